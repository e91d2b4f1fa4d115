//! `testbed`: whole Switchboard networks of real processes on loopback (DESIGN.md section 8).
//!
//! `testbed demo` starts an auth-server, supernodes, a standby mega and clients, shows them
//! working in a live view, kills supernodes with SIGKILL and shows the network recovering, then
//! removes every process and file it made, also on Ctrl-C. The processes are this executable
//! run again as each program (`testbed exec auth-server|supernode|client ARGS`, the same
//! library entry points as the `auth-server`, `supernode` and `client` binaries), so that one
//! `cargo run` builds all it starts. `testbed load`, `testbed cpu` and `testbed outage` measure
//! networks of the same processes (`testbed exec raw-quinn` is plain quinn, the baseline of
//! `cpu`). It must never leave a process or a temporary file behind, and never send traffic
//! anywhere but loopback.

pub mod cpu;
pub mod demo;
pub mod load;
pub mod network;
pub mod outage;
pub mod plot;
pub mod procs;
pub mod rawquinn;
pub mod view;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code of a run interrupted by SIGINT or SIGTERM (128 + SIGINT, as a shell reports it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Switchboard's testbed: real processes on loopback.
#[derive(Debug, Parser)]
#[command(name = "testbed", version, about, long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The testbed's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// A whole network on loopback: auth-server, 4 supernodes, a standby mega and 6 clients;
    /// lookups and a message; 2 supernodes killed (SIGKILL) and the network recovering.
    Demo(demo::DemoArgs),
    /// Thousands of logical clients in this process against real supernodes: throughput and
    /// latency percentiles.
    Load(load::LoadArgs),
    /// The load generator's per-operation mode: one supernode's CPU per lookup and per
    /// registration with 1k/10k/100k records stored, per idle client, and in a reconnect storm.
    Cpu(cpu::CpuArgs),
    /// The relay for clients behind NATs: what one supernode forwards and what it costs per
    /// megabyte, and whether its per-session and total caps hold against a flood.
    Relay(cpu::relay::RelayArgs),
    /// The December 2010 scenario: SIGKILL 30% of the supernodes and restart 20% of the
    /// clients at once; per-second figures, report.json, plot.svg and the headline.
    Outage(outage::OutageArgs),
}

/// Runs `args` (the first is the program's name): `exec ROLE ...` runs one of the programs,
/// anything else is the testbed's own command line.
pub fn main(args: Vec<OsString>) -> ExitCode {
    if args.get(1).is_some_and(|a| a == procs::EXEC) {
        return procs::exec(args.into_iter().skip(2).collect());
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("testbed: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Demo(args) => runtime.block_on(demo::run(args)),
        Command::Load(args) => runtime.block_on(load::run(args)),
        Command::Outage(args) => runtime.block_on(outage::run(args)),
        Command::Cpu(args) => runtime.block_on(cpu::run(args)),
        Command::Relay(args) => runtime.block_on(cpu::relay::run(args)),
    }
}
