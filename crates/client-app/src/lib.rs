//! The `client` program's wiring, shared by its binary and by `testbed` (which runs the same
//! program in its own processes): logging, and the supernode role the client hosts once
//! promoted.

use std::sync::Arc;

use switchboard_client::promotable::{HostRole, PromotedStart};
use switchboard_supernode::promoted::{self, Ended, Start};

/// Logs to stderr at `RUST_LOG` (default `warn`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Starts the supernode role of a promoted client, in this process, until it steps down, is
/// revoked, or the process gets SIGTERM or SIGINT.
pub fn host_role() -> HostRole {
    Arc::new(|start: PromotedStart| {
        Box::pin(async move {
            let start = Start {
                profile_dir: start.profile_dir,
                listen: start.listen,
                public_addr: start.public_addr,
                seeds: start.seeds,
                capacity: start.capacity,
                config: start.config,
            };
            match promoted::run(start, switchboard_net::shutdown::signal()).await? {
                Ended::Demoted => {
                    Ok("demoted: clients handed off, serving as a client only".to_owned())
                }
                Ended::Revoked => {
                    Ok("the promoted ticket was revoked: serving as a client only".to_owned())
                }
                Ended::Stopped => Ok("supernode role stopped".to_owned()),
            }
        })
    })
}

/// Runs the `client` program with `args` (the first is the program's name).
pub fn run<I, T>(args: I) -> std::process::ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::Parser;
    match switchboard_client::Cli::try_parse_from(args) {
        Ok(cli) => switchboard_client::run_hosting(cli, Some(host_role())),
        Err(e) => {
            let _ = e.print();
            std::process::ExitCode::from(if e.use_stderr() { 2 } else { 0 })
        }
    }
}
