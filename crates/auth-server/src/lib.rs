//! The auth-server: accounts (SQLite, argon2id), login over QUIC, signed tickets, the bootstrap
//! list and the revocation list (DESIGN.md sections 2 and 3).
//!
//! This crate owns the command-line contract of the `auth-server` binary and, as they are built,
//! its config, store and service. It must never log a password or the signing key, and never
//! let one client's requests exhaust the server (logins are throttled and capped).
//!
//! Built so far: the command-line contract. Every command answers that it is not built yet and
//! exits 2 (the accounts service is issue #3).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchboard_proto::Role;

/// Exit code of a command that exists in the contract but is not built yet, and of bad usage.
pub const EXIT_NOT_BUILT: u8 = 2;

/// Switchboard's auth-server: accounts, login, signed tickets.
///
/// Passwords are read from stdin (or --password-file), never from the command line.
#[derive(Debug, Parser)]
#[command(name = "auth-server", version, about, long_about = None)]
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

/// The auth-server's commands (DESIGN.md section 8).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the signing key and the account database in DIR; print the public key that
    /// every node is given with --trust.
    Init {
        /// Where the key and database live.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
    /// Serve logins, ticket refreshes, supernode announcements and revocations over QUIC;
    /// prints `listening on ADDR` when ready.
    Serve {
        /// Where the key and database live.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// UDP address to listen on.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Address for Prometheus /metrics and /healthz.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<String>,
    },
    /// Manage accounts.
    User {
        /// Which account operation.
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Print the auth public key (give it to every node with --trust).
    Pubkey {
        /// Where the key lives.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
}

/// Account operations.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; the password is read from stdin.
    Add {
        /// The username (1-32 of a-z 0-9 . _ -).
        name: String,
        /// What the account may do.
        #[arg(long, default_value = "user", value_parser = parse_role)]
        role: Role,
        /// Where the database lives.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
    /// Disable an account: no new tickets, and its tickets join the revocation list.
    Disable {
        /// The username.
        name: String,
        /// Where the database lives.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
    /// List accounts with role, state and last login.
    List {
        /// Where the database lives.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
    /// Change an account's password; the new password is read from stdin.
    Passwd {
        /// The username.
        name: String,
        /// Where the database lives.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
        .map_err(|e: switchboard_proto::ids::ParseRoleError| e.to_string())
}

impl Command {
    /// The command as typed, for messages.
    fn name(&self) -> &'static str {
        match self {
            Self::Init { .. } => "init",
            Self::Serve { .. } => "serve",
            Self::Pubkey { .. } => "pubkey",
            Self::User { action } => match action {
                UserCommand::Add { .. } => "user add",
                UserCommand::Disable { .. } => "user disable",
                UserCommand::List { .. } => "user list",
                UserCommand::Passwd { .. } => "user passwd",
            },
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    eprintln!(
        "auth-server {}: not built yet (the accounts service is issue #3)",
        cli.command.name()
    );
    ExitCode::from(EXIT_NOT_BUILT)
}
