//! The `client` binary: sets up logging, parses the command line and hands it to the client
//! library, with the supernode role it starts in this same process when it is promoted
//! (`client online --promotable`).

use std::process::ExitCode;

fn main() -> ExitCode {
    switchboard_client_app::init_logging();
    switchboard_client_app::run(std::env::args_os())
}
