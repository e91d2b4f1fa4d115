//! The `testbed` binary: parses the command line and hands it to the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    switchboard_testbed::main(std::env::args_os().collect())
}
