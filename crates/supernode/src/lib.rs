//! The supernode daemon: accepts clients over QUIC, holds their registrations as leases,
//! answers lookups, pushes presence and runs the overlay (DESIGN.md sections 2, 5 and 6).
//!
//! This crate owns the `supernode` binary: its command line ([`Cli`]), configuration
//! ([`config`]), the daemon ([`server`]), the per-client sessions ([`session`]), the overlay
//! link to the other supernodes ([`overlay_link`]) and the link to the auth-server
//! ([`auth_link`]). The decisions (leases, admission, membership, the index) are `engine`'s;
//! this crate drives them on `net`. It must never exit under load (it answers `Busy`), never
//! crash on a peer's input, and never hold unbounded state.

pub mod auth_link;
pub mod config;
pub mod overlay_link;
pub mod promoted;
pub mod promotion;
pub mod relay;
pub mod server;
pub mod session;
pub mod shedding;
pub mod standby;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code of bad usage or a bad configuration file.
pub const EXIT_USAGE: u8 = 2;

/// Exit code of a failure to start.
pub const EXIT_FAILED: u8 = 1;

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
    Serve(Box<ServeArgs>),
    /// Exit 0 when the supernode whose metrics address is ADDR answers `GET /healthz`, 1
    /// otherwise: a container's health check (its image holds no HTTP client).
    Healthcheck {
        /// The `--metrics` address.
        #[arg(value_name = "ADDR")]
        metrics: std::net::SocketAddr,
    },
}

/// Options of `supernode serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where the node key, ticket and state live.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// UDP address to accept clients and peers on.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Address announced to clients (default: --listen, 127.0.0.1 if unspecified).
    #[arg(long, value_name = "ADDR")]
    pub public_addr: Option<std::net::SocketAddr>,
    /// The auth-server's address.
    #[arg(long, value_name = "ADDR")]
    pub auth: Option<String>,
    /// The auth-server's public key (64 hex digits, from `auth-server pubkey`), or `@FILE`
    /// to read it from a file (the `auth.pub` that `auth-server init` writes).
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
    pub seeds: Vec<std::net::SocketAddr>,
    /// Most clients served at once.
    #[arg(long, value_name = "N")]
    pub capacity: Option<usize>,
    /// Address for Prometheus /metrics and /healthz.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
}

/// Runs a parsed command line and returns the process's exit code.
pub fn run(cli: Cli) -> ExitCode {
    let args = match cli.command {
        Command::Serve(args) => *args,
        Command::Healthcheck { metrics } => {
            return match switchboard_net::metrics::probe(metrics) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(EXIT_FAILED, format!("unhealthy: {e}")),
            }
        }
    };
    let (mut file, source) = match &cli.config {
        Some(path) => match config::FileConfig::load(path) {
            Ok(file) => (file, path.display().to_string()),
            Err(e) => return fail(EXIT_USAGE, e),
        },
        None => (config::FileConfig::default(), "command line".to_owned()),
    };
    file.data_dir = args.data_dir.or(file.data_dir);
    file.listen = args.listen.or(file.listen);
    file.public_addr = args.public_addr.or(file.public_addr);
    file.auth = args.auth.or(file.auth);
    file.trust = args.trust.or(file.trust);
    file.user = args.user.or(file.user);
    file.password_file = args.password_file.or(file.password_file);
    if args.mega {
        file.mega = Some(true);
    }
    if args.standby {
        file.standby = Some(true);
    }
    if !args.seeds.is_empty() {
        file.seeds = Some(args.seeds);
    }
    file.capacity = args.capacity.or(file.capacity);
    file.metrics = args.metrics.or(file.metrics);
    let config = match file.validate(&source) {
        Ok(config) => config,
        Err(e) => return fail(EXIT_USAGE, e),
    };
    // Accepted (the tests run with them), but said once, before anything binds.
    for warning in &config.warnings {
        tracing::warn!(key = warning.key, "{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(EXIT_FAILED, format!("tokio runtime: {e}")),
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(EXIT_FAILED, e),
    }
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("supernode: {message}");
    ExitCode::from(code)
}

/// Logs in (or, if the auth-server is unreachable, falls back to the stored ticket), binds,
/// prints the readiness line and serves until SIGTERM.
async fn serve(config: config::Config) -> Result<(), String> {
    use std::io::Write;
    use switchboard_account::login::{login, LoginError};
    use switchboard_account::profile::Profile;

    warn_if_readable_by_others(&config.password_file);
    let password = std::fs::read_to_string(&config.password_file)
        .map_err(|e| format!("{}: {e}", config.password_file.display()))?;
    let password = password.lines().next().unwrap_or_default();
    let password = switchboard_proto::messages::Password::new(password)
        .ok_or_else(|| "the password file holds a password that is too long".to_owned())?;
    let profile = Profile::new(&config.data_dir);
    let logged_in = login(
        &profile,
        &config.auth,
        config.trust,
        config.user.clone(),
        password,
        false,
    )
    .await;
    let ticket = match logged_in {
        Ok(done) => done.ticket,
        Err(
            e @ (LoginError::Unreachable(_)
            | LoginError::Busy(_)
            | LoginError::Exchange(_)
            | LoginError::Throttled(_)),
        ) => {
            // The network must outlive the auth-server, and a service account whose name
            // someone hammers with wrong passwords must not take its supernode down: serve with
            // the stored ticket (refreshed later over the auth link, without the password).
            let ticket = profile
                .ticket()
                .map_err(|_| format!("{e}, and no stored ticket to fall back on"))?;
            // An expired ticket would be refused by every client and peer: say so now rather
            // than serve nobody.
            let expires_at = ticket.body_unverified().expires_at;
            if ticket.remaining_secs(switchboard_net::now_unix()) == 0 {
                return Err(format!(
                    "{e}, and the stored ticket expired at {expires_at}; start again once the auth-server answers"
                ));
            }
            tracing::warn!("{e}; serving with the stored ticket (valid until {expires_at})");
            ticket
        }
        Err(e) => return Err(format!("login as {}: {e}", config.user)),
    };
    let role = ticket.body_unverified().role;
    let mega = matches!(config.mode, config::Mode::Mega | config::Mode::MegaStandby);
    if !role.may_serve(mega) {
        return Err(format!(
            "account {} has role {role}, which may not serve as a {}supernode",
            config.user,
            if mega { "mega-" } else { "" }
        ));
    }
    let key = profile.node_key().map_err(|e| e.to_string())?;
    let alternatives: Vec<switchboard_proto::PeerAddr> = profile
        .hosts()
        .unwrap_or_default()
        .iter()
        .filter_map(switchboard_account::profile::Host::peer)
        .collect();
    let server = server::Server::bind(config, key, ticket, alternatives)
        .await
        .map_err(|e| e.to_string())?;
    let addr = server.local_addr().map_err(|e| e.to_string())?;
    if let Some(metrics) = server.metrics_addr() {
        println!("metrics on {metrics}");
    }
    println!("listening on {addr}");
    let _ = std::io::stdout().flush();
    let shared = std::sync::Arc::clone(server.shared());
    server.run(switchboard_net::shutdown::signal()).await;
    if shared.was_revoked() {
        return Err(format!(
            "the ticket of account {} is revoked (account disabled or device key revoked); \
             this supernode redirected its clients and stopped",
            shared.config.user
        ));
    }
    Ok(())
}

/// Warns (once, at start) when the service account's password file can be read by its group
/// or by anyone: whoever reads it can log in as this supernode.
fn warn_if_readable_by_others(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = std::fs::metadata(path) {
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    "password file {} is readable by others (mode {mode:o}); run chmod 600 on it",
                    path.display()
                );
            }
        }
    }
}
