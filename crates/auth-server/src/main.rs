//! The `auth-server` binary: parses the command line and hands it to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    switchboard_auth_server::run(switchboard_auth_server::Cli::parse())
}
