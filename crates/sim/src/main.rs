//! `switchboard-sim`: runs the deterministic simulator.
//!
//! - `switchboard-sim run --seed N`: one seed of the fault sweep scenario (replays a failure);
//! - `switchboard-sim sweep --seeds N`: seeds 1..=N of it;
//! - `switchboard-sim scale`: 1,000 supernodes, formed into one overlay, and 100,000 clients,
//!   then 30% of the supernodes crash at once; prints the figures BENCHMARKS.md reports.
//!   `--cold-start` has the supernodes all join through the first at once instead. `--megas N` adds a
//!   tier of N standby megas (`--mega-capacity` each) that `engine`'s standby policy
//!   activates; `--capacity` sets the supernodes' capacity (default: twice the clients per
//!   supernode).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

/// mimalloc rather than glibc's allocator: the run allocates and frees per event on two threads
/// (see the workspace's `Cargo.toml`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use switchboard_engine::Time;
use switchboard_sim::{run, ScaleTiming, SimConfig, Targets, World};

#[derive(Parser)]
#[command(
    name = "switchboard-sim",
    about = "Deterministic simulator of a Switchboard network"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One seed of the fault sweep scenario.
    Run {
        /// The seed (what a failure printed as SIM_SEED).
        #[arg(long, env = "SIM_SEED", default_value_t = 1)]
        seed: u64,
        /// Print the trace.
        #[arg(long)]
        trace: bool,
    },
    /// Seeds 1..=N of the fault sweep scenario.
    Sweep {
        /// How many seeds.
        #[arg(long, env = "SIM_SEEDS", default_value_t = 20)]
        seeds: u64,
    },
    /// The scale run.
    Scale {
        /// Supernodes.
        #[arg(long, default_value_t = 1000)]
        supernodes: usize,
        /// Clients.
        #[arg(long, default_value_t = 100_000)]
        clients: usize,
        /// Fraction of the supernodes that crash at once.
        #[arg(long, default_value_t = 0.3)]
        crash: f64,
        /// The seed (a `SIM_SEED` in the environment, left there by a sweep, is not read: a
        /// scale run's figures are those of its command line).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Seconds over which the clients arrive.
        #[arg(long, default_value_t = 40)]
        arrival_secs: u64,
        /// When the crash happens (seconds).
        #[arg(long, default_value_t = 70)]
        crash_at_secs: u64,
        /// Seconds the run goes on after the crash.
        #[arg(long, default_value_t = 40)]
        after_secs: u64,
        /// Clients each supernode admits (default: twice the clients per supernode).
        #[arg(long)]
        capacity: Option<u32>,
        /// Standby megas (about 2% of the supernodes is the tier BENCHMARKS.md measures).
        #[arg(long, default_value_t = 0)]
        megas: usize,
        /// Clients each mega admits once active.
        #[arg(long, default_value_t = 5_000)]
        mega_capacity: u32,
        /// Start the supernodes all joining at once through the first (a mass join) instead of
        /// as a formed overlay.
        #[arg(long)]
        cold_start: bool,
        /// The membership's load backlog limit (`MembershipConfig::load_backlog_limit`); a very
        /// large one gives the load gossip as it was before the limit, for comparison.
        #[arg(long)]
        load_backlog_limit: Option<usize>,
        /// Target: 99% of clients re-homed within this many seconds of the crash.
        #[arg(long, default_value_t = 30.0)]
        target_rehome_secs: f64,
        /// Target: lookups find 99.9% of online users within this many seconds of the crash.
        #[arg(long, default_value_t = 30.0)]
        target_findable_secs: f64,
        /// Target: membership converged within this many seconds of the crash.
        #[arg(long, default_value_t = 30.0)]
        target_converge_secs: f64,
        /// Target: at most this many overlay messages per supernode per second.
        #[arg(long, default_value_t = 700.0)]
        target_messages_per_sec: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { seed, trace } => {
            let mut config = SimConfig::sweep(seed);
            config.keep_trace = trace;
            match run(config) {
                Ok(world) => {
                    if trace {
                        for line in world.trace_lines() {
                            println!("{line}");
                        }
                    }
                    let figures = world.figures();
                    print!("{}", figures.timeline(Duration::from_secs(5)));
                    println!(
                        "lookups {} found {} busy {} registrations {}",
                        figures.lookups, figures.lookups_found, figures.busy, figures.registrations
                    );
                    println!("SIM_SEED={seed}: ok, {} events", world.events());
                    ExitCode::SUCCESS
                }
                Err(failure) => {
                    eprintln!("{failure}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Sweep { seeds } => {
            for seed in 1..=seeds {
                if let Err(failure) = run(SimConfig::sweep(seed)) {
                    eprintln!("{failure}");
                    return ExitCode::FAILURE;
                }
                println!("SIM_SEED={seed}: ok");
            }
            ExitCode::SUCCESS
        }
        Command::Scale {
            supernodes,
            clients,
            crash,
            seed,
            arrival_secs,
            crash_at_secs,
            after_secs,
            capacity,
            megas,
            mega_capacity,
            load_backlog_limit,
            cold_start,
            target_rehome_secs,
            target_findable_secs,
            target_converge_secs,
            target_messages_per_sec,
        } => {
            let secs = |s: f64| Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX);
            let targets = Targets {
                rehomed_99: secs(target_rehome_secs),
                findable_999: secs(target_findable_secs),
                converged: secs(target_converge_secs),
                messages_per_sec: target_messages_per_sec,
            };
            let mut config = SimConfig::scale(
                seed,
                supernodes,
                clients,
                crash,
                ScaleTiming {
                    arrival: Duration::from_secs(arrival_secs),
                    crash_at: Duration::from_secs(crash_at_secs),
                    after: Duration::from_secs(after_secs),
                },
            )
            .with_standby_megas(megas, mega_capacity);
            if let Some(capacity) = capacity {
                config.capacity = capacity;
            }
            config.formed = !cold_start;
            if let Some(limit) = load_backlog_limit {
                config.membership.load_backlog_limit = limit;
            }
            scale(config, &targets)
        }
    }
}

/// Runs a scale scenario, prints its figures, and fails when an invariant broke or a target
/// of `targets` was missed.
fn scale(config: SimConfig, targets: &Targets) -> ExitCode {
    let started = Instant::now();
    println!(
        "scale run: {} supernodes (capacity {}), {} standby megas (capacity {}), {} clients, {} crash at t={}s, seed {}",
        config.supernodes,
        config.capacity,
        config.standby_megas,
        config.mega_capacity,
        config.clients,
        config.faults.first().map_or(0, |(_, f)| match f {
            switchboard_sim::Fault::Crash(list) => list.len(),
            _ => 0,
        }),
        config.faults.first().map_or(0, |(at, _)| at.0 / 1000),
        config.seed
    );
    let crash_at = config.faults.first().map_or(Time::ZERO, |(at, _)| *at);
    let end = config.end;
    let mut world = match World::new(config) {
        Ok(world) => world,
        Err(e) => {
            eprintln!("setup failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let setup = started.elapsed();
    println!(
        "setup (keys and tickets signed, tickets verified): {:.1}s",
        setup.as_secs_f64()
    );
    let mut at = Time::ZERO;
    while at < end {
        at = Time((at.0 + 10_000).min(end.0));
        if let Err(violation) = world.run_until(at) {
            eprintln!("SIM_SEED={}: {violation}", world.seed());
            return ExitCode::FAILURE;
        }
        let sizes = world.view_sizes();
        let live = world.live_count();
        let partial: usize = sizes
            .iter()
            .filter(|(size, _)| **size != live)
            .map(|(_, n)| n)
            .sum();
        println!(
            "  simulated {:>4}s in {:>6.1}s wall, {} events; {partial} of {live} live supernodes see a membership of another size",
            at.0 / 1000,
            started.elapsed().as_secs_f64(),
            world.events()
        );
    }
    let wall = started.elapsed() - setup;
    for line in world.stale_views().iter().take(10) {
        println!("{line}");
    }
    println!(
        "membership sizes seen by live supernodes (size: how many): {:?}",
        world.view_sizes()
    );
    println!(
        "members declared down, summed over observers: {}",
        world.downs_seen()
    );
    let figures = world.figures();
    println!("{}", figures.timeline(Duration::from_secs(5)));
    let show =
        |d: Option<Duration>| d.map_or("never".to_string(), |d| format!("{:.1}s", d.as_secs_f64()));
    println!(
        "re-homed 99% of clients: {} after the crash",
        show(figures.rehomed_99)
    );
    println!(
        "lookups find 99.9% of online users: {} after the crash",
        show(figures.lookups_999)
    );
    println!(
        "membership converged (every live supernode sees exactly the live set): {} after the crash",
        show(figures.converged)
    );
    if let Some(rate) = figures.message_rate(Time(crash_at.0 - 20_000), crash_at) {
        println!("messages per supernode per second, steady state: {rate:.1}");
    }
    if let Some(rate) = figures.message_rate(crash_at, Time(crash_at.0 + 30_000)) {
        println!("messages per supernode per second, 30 s after the crash: {rate:.1}");
    }
    for (when, from, to) in [
        ("steady state", Time(crash_at.0 - 20_000), crash_at),
        ("30 s after the crash", crash_at, Time(crash_at.0 + 30_000)),
    ] {
        if let Some((updates, loads)) = figures.mean_backlogs(from, to) {
            println!(
                "membership backlogs per supernode, {when}: {updates:.1} member updates, {loads:.1} load reports"
            );
        }
        if let Some((error, unknown)) = figures.mean_load_error(from, to) {
            println!(
                "gossiped loads, {when}: {error:.2} clients from the truth on average, {:.2}% unknown",
                unknown * 100.0
            );
        }
    }
    if let Some(share) = figures.lookup_success(Time(crash_at.0 - 20_000), crash_at) {
        println!(
            "end-to-end lookups found, steady state: {:.3}%",
            share * 100.0
        );
    }
    if let Some(share) = figures.lookup_success(Time(crash_at.0 + 30_000), end) {
        println!(
            "end-to-end lookups found, from 30 s after the crash: {:.3}%",
            share * 100.0
        );
    }
    println!(
        "busy answers {}, registrations {}",
        figures.busy, figures.registrations
    );
    if let Some(last) = figures.samples.last() {
        println!(
            "at the end: {} of {} clients online, {} active megas holding {} clients",
            last.online,
            world.online_count().1,
            last.megas_active,
            last.on_megas
        );
    }
    println!(
        "megas activated {} (first {} after the crash), returned {}; most role changes of one node: {}",
        figures.mega_activations,
        show(figures.mega_active_after),
        figures.mega_returns,
        figures.max_role_changes
    );
    println!(
        "longest any online client stayed unfindable (0.5 s checks): {:.1}s",
        figures.longest_unfindable.as_secs_f64()
    );
    println!(
        "simulator: {} events in {:.1}s wall = {:.0} events/s ({:.1}s simulated)",
        world.events(),
        wall.as_secs_f64(),
        world.events() as f64 / wall.as_secs_f64().max(1e-9),
        end.0 as f64 / 1000.0
    );
    let missed = figures.missed(targets);
    if !missed.is_empty() {
        eprintln!(
            "seed {}: targets missed: {}",
            world.seed(),
            missed.join("; ")
        );
        return ExitCode::FAILURE;
    }
    println!("every target met ({targets:?})");
    ExitCode::SUCCESS
}
