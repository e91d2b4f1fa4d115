//! The supernode daemon: accepts clients over QUIC, holds their registrations as leases,
//! answers lookups, pushes presence and runs the overlay (DESIGN.md sections 2, 5 and 6).
//!
//! This crate owns the `supernode` binary's command line and, as they are built, its config
//! and the driver that runs `engine`'s state machines on `net`. It must never exit under load
//! (it answers `Busy`), never crash on a peer's input, and never hold unbounded state.
//!
//! Built so far: the command-line contract. `serve` answers that it is not built yet and exits
//! 2 (the daemon is issue #4, the overlay issue #5).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code of a command that exists in the contract but is not built yet, and of bad usage.
pub const EXIT_NOT_BUILT: u8 = 2;

/// Switchboard's supernode: registrations, lookups, presence and the overlay.
#[derive(Debug, Parser)]
#[command(name = "supernode", version, about, long_about = None)]
pub struct Cli {
    /// TOML configuration (unknown keys are rejected); flags override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The supernode's commands (DESIGN.md section 8).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in with a service account, join the overlay and serve clients; prints
    /// `listening on ADDR` when ready; on SIGTERM hands clients off and exits 0.
    Serve(ServeArgs),
}

/// Options of `supernode serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where the node key, ticket and state live.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// UDP address to accept clients and peers on.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The auth-server's address.
    #[arg(long, value_name = "ADDR")]
    pub auth: Option<String>,
    /// The auth-server's public key (64 hex digits, from `auth-server pubkey`).
    #[arg(long, value_name = "PUBKEY")]
    pub trust: Option<String>,
    /// The service account (role supernode, or mega with --mega).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// File holding the service account's password.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Run as an operator mega-supernode (needs a mega account).
    #[arg(long)]
    pub mega: bool,
    /// With --mega: join the overlay but serve no clients until the overlay needs capacity.
    #[arg(long, requires = "mega")]
    pub standby: bool,
    /// An overlay member to join through (repeatable).
    #[arg(long = "seed", value_name = "ADDR")]
    pub seeds: Vec<String>,
    /// Most clients served at once.
    #[arg(long, value_name = "N")]
    pub capacity: Option<u32>,
    /// Address for Prometheus /metrics and /healthz.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(_) => {
            eprintln!("supernode serve: not built yet (the daemon is issue #4, the overlay #5)");
        }
    }
    ExitCode::from(EXIT_NOT_BUILT)
}
