//! The client: logs in, keeps one connection to a home supernode, registers, looks peers up,
//! watches presence and talks to peers directly (DESIGN.md sections 2 and 6).
//!
//! This crate owns the `client` binary's command line and, as they are built, the profile
//! (node key, ticket, host cache) and the driver of `engine`'s client session. It must never
//! read a password from argv, never stampede (every retry goes through capped full jitter), and
//! never trust a record it has not verified.
//!
//! Built so far: the command-line contract. Every command answers that it is not built yet and
//! exits 2 (login is issue #3, the rest issue #4).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code of a command that exists in the contract but is not built yet, and of bad usage.
pub const EXIT_NOT_BUILT: u8 = 2;

/// Switchboard's client: log in, go online, look peers up, talk to them directly.
///
/// Passwords are read from stdin, never from the command line.
#[derive(Debug, Parser)]
#[command(name = "client", version, about, long_about = None)]
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

/// The client's commands (DESIGN.md section 8).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in (password on stdin); store the node key, ticket, auth key and bootstrap list in
    /// the profile.
    Login {
        /// The profile directory.
        #[arg(long, value_name = "DIR")]
        profile: PathBuf,
        /// The auth-server's address.
        #[arg(long, value_name = "ADDR")]
        auth: String,
        /// The auth-server's public key (64 hex digits).
        #[arg(long, value_name = "PUBKEY")]
        trust: String,
        /// The account.
        #[arg(long, value_name = "NAME")]
        user: String,
    },
    /// Create an account on a server with open sign-up (password on stdin), then log in.
    Signup {
        /// The profile directory.
        #[arg(long, value_name = "DIR")]
        profile: PathBuf,
        /// The auth-server's address.
        #[arg(long, value_name = "ADDR")]
        auth: String,
        /// The auth-server's public key (64 hex digits).
        #[arg(long, value_name = "PUBKEY")]
        trust: String,
        /// The account to create.
        #[arg(long, value_name = "NAME")]
        user: String,
    },
    /// Stay online: register, refresh, fail over, and print messages from peers.
    Online {
        /// The profile directory.
        #[arg(long, value_name = "DIR")]
        profile: PathBuf,
        /// UDP address for direct connections from peers.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Offer to become a supernode when the overlay needs capacity.
        #[arg(long)]
        promotable: bool,
    },
    /// Print the verified records of NAME's online devices.
    Lookup {
        /// Whom to find.
        name: String,
        /// The profile directory.
        #[arg(long, value_name = "DIR")]
        profile: PathBuf,
    },
    /// Look NAME up and deliver TEXT directly over QUIC; exit 0 once delivered.
    Send {
        /// To whom.
        name: String,
        /// What.
        text: String,
        /// The profile directory.
        #[arg(long, value_name = "DIR")]
        profile: PathBuf,
    },
    /// Stream presence changes of these users.
    Watch {
        /// Whom to watch.
        #[arg(required = true)]
        names: Vec<String>,
        /// The profile directory.
        #[arg(long, value_name = "DIR")]
        profile: PathBuf,
    },
}

impl Command {
    fn describe(&self) -> (&'static str, &'static str) {
        match self {
            Self::Login { .. } => ("login", "issue #3"),
            Self::Signup { .. } => ("signup", "issue #3"),
            Self::Online { .. } => ("online", "issue #4"),
            Self::Lookup { .. } => ("lookup", "issue #4"),
            Self::Send { .. } => ("send", "issue #4"),
            Self::Watch { .. } => ("watch", "issue #4"),
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let (name, issue) = cli.command.describe();
    eprintln!("client {name}: not built yet ({issue})");
    ExitCode::from(EXIT_NOT_BUILT)
}
