//! Helpers for end-to-end tests that spawn the real `auth-server`, `supernode` and `client`
//! binaries of this workspace: finding them, running commands with stdin, and daemons that are
//! killed when the test ends.
//!
//! This crate owns process plumbing for tests. It must never send traffic anywhere but
//! loopback or network namespaces the tests made, and every wait in it has a deadline.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The workspace's binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    /// `auth-server`.
    AuthServer,
    /// `supernode`.
    Supernode,
    /// `client`.
    Client,
    /// `testbed`.
    Testbed,
}

impl Binary {
    /// Every binary.
    pub const ALL: [Self; 4] = [
        Self::AuthServer,
        Self::Supernode,
        Self::Client,
        Self::Testbed,
    ];

    /// The executable's name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::AuthServer => "auth-server",
            Self::Supernode => "supernode",
            Self::Client => "client",
            Self::Testbed => "testbed",
        }
    }

    const fn package(self) -> &'static str {
        match self {
            Self::AuthServer => "switchboard-auth-server",
            Self::Supernode => "switchboard-supernode",
            Self::Client => "switchboard-client-app",
            Self::Testbed => "switchboard-testbed",
        }
    }

    /// Path of the built executable, next to this test's own profile directory
    /// (`target/<profile>/`). Builds it with cargo first if it is missing, so that a single
    /// test can run on its own (`cargo test -p switchboard-tests`).
    pub fn path(self) -> std::io::Result<PathBuf> {
        let exe = std::env::current_exe()?;
        // target/<profile>/deps/<test> -> target/<profile>/
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .ok_or_else(|| std::io::Error::other("test executable has no profile directory"))?;
        let path = profile_dir.join(self.name());
        if !path.exists() {
            let mut build = Command::new(env!("CARGO"));
            build.args(["build", "-p", self.package(), "--bin", self.name()]);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                build.arg("--release");
            }
            let status = build.status()?;
            if !status.success() {
                return Err(std::io::Error::other(format!(
                    "cargo build of {} failed",
                    self.name()
                )));
            }
        }
        Ok(path)
    }

    /// A command for the binary with `args`.
    pub fn command(self, args: &[&str]) -> std::io::Result<Command> {
        let mut command = Command::new(self.path()?);
        command.args(args);
        Ok(command)
    }

    /// Runs the binary with `args` and no stdin, and returns its output.
    pub fn run(self, args: &[&str]) -> std::io::Result<Output> {
        self.command(args)?.stdin(Stdio::null()).output()
    }

    /// Runs the binary with `args`, writing `stdin` to it, and returns its output.
    pub fn run_with_stdin(self, args: &[&str], stdin: &str) -> std::io::Result<Output> {
        let mut child = self
            .command(args)?
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut pipe) = child.stdin.take() {
            // A command that fails before it reads stdin (bad usage) closes the pipe first.
            match pipe.write_all(stdin.as_bytes()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other?,
            }
        }
        child.wait_with_output()
    }

    /// Starts the binary as a daemon and waits (at most `timeout`) for its readiness line
    /// `listening on ADDR`.
    pub fn spawn_daemon(self, args: &[&str], timeout: Duration) -> std::io::Result<Daemon> {
        let command = self.command(args)?;
        self.spawn_ready(command, timeout)
    }

    /// As [`Self::spawn_daemon`], in the network namespace `netns` (`ip netns exec`, which
    /// execs the binary: the daemon keeps the child's pid, so signals reach it).
    pub fn spawn_daemon_in(
        self,
        netns: &str,
        args: &[&str],
        timeout: Duration,
    ) -> std::io::Result<Daemon> {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", netns])
            .arg(self.path()?)
            .args(args);
        self.spawn_ready(command, timeout)
    }

    fn spawn_ready(self, mut command: Command, timeout: Duration) -> std::io::Result<Daemon> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let (lines_tx, lines_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = child.stderr.take();
        std::thread::spawn(move || {
            // Pass the daemon's log through, so a failing test shows it.
            if let Some(stderr) = stderr {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("[daemon] {line}");
                }
            }
        });
        let deadline = Instant::now() + timeout;
        let mut early = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        let addr = addr
                            .trim()
                            .parse()
                            .map_err(|e| std::io::Error::other(format!("{line:?}: {e}")))?;
                        return Ok(Daemon {
                            child,
                            addr,
                            early,
                            lines: lines_rx,
                        });
                    }
                    early.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait()?;
                    return Err(std::io::Error::other(format!(
                        "{} did not print `listening on` within {timeout:?} ({status})",
                        self.name()
                    )));
                }
            }
        }
    }
}

/// A running daemon; SIGKILLed when dropped.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    addr: SocketAddr,
    early: Vec<String>,
    lines: mpsc::Receiver<String>,
}

impl Daemon {
    /// The address from its readiness line.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics address from its `metrics on ADDR` line, if it printed one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.early
            .iter()
            .find_map(|line| line.strip_prefix("metrics on ")?.trim().parse().ok())
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a real signal (`kill -SIGNAL pid`).
    pub fn signal(&self, signal: &str) -> std::io::Result<()> {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("kill -{signal} failed")))
        }
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits (at most `timeout`) for it to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, timeout)
    }

    /// Lines it printed on stdout after the readiness line, so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// SIGKILL, and reap.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (at most `timeout`) for `child` to exit by itself; `None` if it is still running.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("switchboard-test-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot make a temporary directory: {e}"))
}

/// Reads `GET path` from an HTTP server on loopback (the daemons' metrics endpoint).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// The seed of a test's random choices: `SWITCHBOARD_TEST_SEED` if set (to replay a run),
/// else a fresh one. Printed either way, so a failure names the seed that replays it.
///
/// # Panics
///
/// If `SWITCHBOARD_TEST_SEED` is set to something that is not a number: a typo must not
/// quietly become a random run.
pub fn test_seed() -> u64 {
    let seed = match std::env::var("SWITCHBOARD_TEST_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("SWITCHBOARD_TEST_SEED={text:?} is not a seed: {e}")),
        Err(_) => rand::random(),
    };
    println!("SWITCHBOARD_TEST_SEED={seed} (set it to replay this run)");
    seed
}
