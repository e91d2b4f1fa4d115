//! The `client` binary: sets up logging, parses the command line and hands it to the client
//! library, with the supernode role it starts in this same process when it is promoted
//! (`client online --promotable`).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use switchboard_client::promotable::{HostRole, PromotedStart};
use switchboard_supernode::promoted::{self, Ended, Start};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let host: HostRole = Arc::new(|start: PromotedStart| {
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
                    Ok("demoted: clients handed off, serving as a client only".into())
                }
                Ended::Revoked => {
                    Ok("the promoted ticket was revoked: serving as a client only".into())
                }
                Ended::Stopped => Ok("supernode role stopped".into()),
            }
        })
    });
    switchboard_client::run_hosting(switchboard_client::Cli::parse(), Some(host))
}
