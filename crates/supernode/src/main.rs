//! The `supernode` binary: parses the command line and hands it to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    switchboard_supernode::run(switchboard_supernode::Cli::parse())
}
