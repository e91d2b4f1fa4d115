//! Helpers for end-to-end tests that spawn the real `auth-server`, `supernode` and `client`
//! binaries of this workspace.
//!
//! This crate owns finding (and if needed building) those binaries and running them with a
//! deadline. It must never send traffic anywhere but loopback or namespaces the tests made.

use std::io;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The workspace's binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    /// `auth-server`.
    AuthServer,
    /// `supernode`.
    Supernode,
    /// `client`.
    Client,
}

impl Binary {
    /// Every binary.
    pub const ALL: [Self; 3] = [Self::AuthServer, Self::Supernode, Self::Client];

    /// The executable's name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::AuthServer => "auth-server",
            Self::Supernode => "supernode",
            Self::Client => "client",
        }
    }

    const fn package(self) -> &'static str {
        match self {
            Self::AuthServer => "switchboard-auth-server",
            Self::Supernode => "switchboard-supernode",
            Self::Client => "switchboard-client",
        }
    }

    /// Path of the built executable, next to this test's own profile directory
    /// (`target/<profile>/`). Builds it with cargo first if it is missing, so that a single
    /// test can run on its own (`cargo test -p switchboard-tests`).
    pub fn path(self) -> io::Result<PathBuf> {
        let exe = std::env::current_exe()?;
        // target/<profile>/deps/<test> -> target/<profile>/
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .ok_or_else(|| io::Error::other("test executable has no profile directory"))?;
        let path = profile_dir.join(self.name());
        if !path.exists() {
            let mut build = Command::new(env!("CARGO"));
            build.args(["build", "-p", self.package(), "--bin", self.name()]);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                build.arg("--release");
            }
            let status = build.status()?;
            if !status.success() {
                return Err(io::Error::other(format!(
                    "cargo build of {} failed",
                    self.name()
                )));
            }
        }
        Ok(path)
    }

    /// Runs the binary with `args` and no stdin, and returns its output.
    pub fn run(self, args: &[&str]) -> io::Result<Output> {
        Command::new(self.path()?)
            .args(args)
            .stdin(Stdio::null())
            .output()
    }
}
