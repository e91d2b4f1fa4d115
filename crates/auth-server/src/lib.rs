//! The auth-server: accounts (SQLite, argon2id), login over QUIC, signed tickets, the bootstrap
//! list and the revocation list (DESIGN.md sections 2 and 3).
//!
//! This crate owns the `auth-server` binary: its command line ([`Cli`]), its configuration
//! ([`config`]), the account store ([`store`]), password hashing ([`password`]), the bootstrap
//! registry ([`registry`]), the service answering requests ([`service`]) and the server loop
//! ([`serve`]). It must never log a password or the signing key, never let one client's
//! requests exhaust the server (logins are throttled, queued and capped), and never lose an
//! account whose creation it reported.

pub mod commands;
pub mod config;
pub mod import;
pub mod issuance;
pub mod password;
pub mod registry;
pub mod serve;
pub mod service;
pub mod status;
pub mod store;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchboard_proto::Role;

/// File name of the signing key inside the data directory.
pub const KEY_FILE: &str = "auth.key";

/// File name of the public key (64 hex digits and a newline) that `init` writes beside the
/// signing key: what every node needs as `--trust` (`--trust @PATH` reads it from a file, as a
/// container does from the auth-server's volume mounted read-only).
pub const PUBKEY_FILE: &str = "auth.pub";

/// Exit code of bad usage or a bad configuration file.
pub const EXIT_USAGE: u8 = 2;

/// Exit code of a command that failed.
pub const EXIT_FAILED: u8 = 1;

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
    /// Exit 0 when the auth-server whose metrics address is ADDR answers `GET /healthz`, 1
    /// otherwise: a container's health check (its image holds no HTTP client).
    Healthcheck {
        /// The `--metrics` address.
        #[arg(value_name = "ADDR")]
        metrics: std::net::SocketAddr,
    },
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
        data_dir: Option<PathBuf>,
        /// UDP address to listen on (default 0.0.0.0:7700).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Address for Prometheus /metrics and /healthz.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Manage accounts.
    User {
        /// Which account operation.
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Revoke one device's key (every ticket for it, and its logins) or one ticket serial
    /// (and its refreshes); supernodes close its sessions at their next revocation poll.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["node", "serial"])))]
    Revoke {
        /// The device's node key (64 hex digits, as `client` and the logs print it).
        #[arg(long, value_name = "KEY")]
        node: Option<switchboard_proto::NodeId>,
        /// A ticket serial.
        #[arg(long, value_name = "N")]
        serial: Option<u64>,
        /// Where the database lives.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
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
        /// Read the password from this file instead of stdin.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Create COUNT accounts PREFIX00000, PREFIX00001, ... sharing one password (read from
    /// stdin) and one password hash (one argon2 run, one salt): for test fleets only (the
    /// testbed's load generator), never for people.
    AddMany {
        /// The names' prefix (the names must stay within 32 characters).
        prefix: String,
        /// How many accounts.
        count: u32,
        /// What the accounts may do.
        #[arg(long, default_value = "user", value_parser = parse_role)]
        role: Role,
        /// Where the database lives.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// Read the password from this file instead of stdin.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
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
    /// Create the accounts listed in FILE (TOML: `[[account]]` tables with `name`, `role` and
    /// `password_file`, a path relative to FILE) that do not exist yet, initialising the data
    /// directory first if it has no key: the one-command set-up step of a deployment, which
    /// may run again on every start (existing accounts are kept as they are).
    Import {
        /// The accounts file.
        file: PathBuf,
        /// Where the database lives (created when missing).
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// Also write the public key to this file (a volume the other nodes mount, which
        /// must not hold the signing key).
        #[arg(long, value_name = "FILE")]
        write_pubkey: Option<PathBuf>,
    },
    /// Change an account's password; the new password is read from stdin.
    Passwd {
        /// The username.
        name: String,
        /// Where the database lives.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// Read the password from this file instead of stdin.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    let role: Role = text
        .parse()
        .map_err(|e: switchboard_proto::ids::ParseRoleError| e.to_string())?;
    if !Role::ACCOUNT.contains(&role) {
        return Err(format!(
            "{role} is a ticket's role, never an account's: a client is promoted on its home's nomination"
        ));
    }
    Ok(role)
}

/// Runs a parsed command line and returns the process's exit code.
pub fn run(cli: Cli) -> ExitCode {
    commands::run(cli)
}
