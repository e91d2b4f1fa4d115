//! Helpers shared by the end-to-end tests: an auth-server with accounts, supernodes, client
//! profiles, and long-running client commands whose output is watched.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use switchboard_tests::{http_get, temp_dir, Binary, Daemon};

pub const READY: Duration = Duration::from_secs(30);
pub const PASSWORD: &str = "pw";

/// An auth-server with accounts, and helpers to start supernodes and log clients in.
pub struct Network {
    pub dir: tempfile::TempDir,
    pub pubkey: String,
    pub auth: Daemon,
}

impl Network {
    pub fn new(users: &[&str], supernodes: &[&str]) -> Self {
        let dir = temp_dir();
        let data = dir.path().join("auth");
        let data = data.to_str().unwrap();
        let output = Binary::AuthServer
            .run(&["init", "--data-dir", data])
            .unwrap();
        let pubkey = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        for (names, role) in [(users, "user"), (supernodes, "supernode")] {
            for name in names {
                let out = Binary::AuthServer
                    .run_with_stdin(
                        &["user", "add", name, "--role", role, "--data-dir", data],
                        &format!("{PASSWORD}\n"),
                    )
                    .unwrap();
                assert!(out.status.success());
            }
        }
        std::fs::write(dir.path().join("pw"), format!("{PASSWORD}\n")).unwrap();
        let auth = Binary::AuthServer
            .spawn_daemon(
                &["serve", "--data-dir", data, "--listen", "127.0.0.1:0"],
                READY,
            )
            .unwrap();
        Self { dir, pubkey, auth }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn supernode(&self, name: &str, extra: &[&str]) -> Daemon {
        let data = self.path(name);
        let password = self.path("pw");
        let auth = self.auth.addr().to_string();
        let mut args = vec![
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
            "--auth",
            &auth,
            "--trust",
            &self.pubkey,
            "--user",
            name,
            "--password-file",
            password.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let daemon = Binary::Supernode.spawn_daemon(&args, READY).unwrap();
        // The announcement reaches the auth-server's bootstrap list at start-up.
        wait_until(Duration::from_secs(10), || {
            http_get(daemon.metrics_addr().unwrap(), "/healthz").is_ok()
        });
        daemon
    }

    pub fn login(&self, user: &str) -> PathBuf {
        let profile = self.path(&format!("profile-{user}"));
        let output = Binary::Client
            .run_with_stdin(
                &[
                    "login",
                    "--profile",
                    profile.to_str().unwrap(),
                    "--auth",
                    &self.auth.addr().to_string(),
                    "--trust",
                    &self.pubkey,
                    "--user",
                    user,
                ],
                &format!("{PASSWORD}\n"),
            )
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        profile
    }
}

/// A counter or gauge from a daemon's `/metrics`.
pub fn metric(daemon: &Daemon, name: &str) -> Option<u64> {
    let body = http_get(daemon.metrics_addr()?, "/metrics").ok()?;
    body.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A long-running client command whose stdout and stderr lines are collected.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    pub fn start(args: &[&str]) -> Self {
        let mut child = Binary::Client
            .command(args)
            .unwrap()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; returns it.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    println!(
                        "  | {:?} {line}",
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap_or_default()
                            .as_millis()
                            % 100_000
                    );
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {timeout:?}; saw {:?}",
                    self.seen
                ),
            }
        }
    }

    /// Whether a line seen so far contains `needle` (takes what arrived meanwhile first).
    pub fn seen_contains(&mut self, needle: &str) -> bool {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen.iter().any(|l| l.contains(needle))
    }

    /// Waits for a line containing `needle` that was not seen before this call.
    pub fn expect_new(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no new line with {needle:?} within {timeout:?}; saw {:?}",
                    self.seen
                ),
            }
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn client(args: &[&str]) -> (bool, String, String) {
    let output = Binary::Client.run(args).unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub fn online(profile: &Path) -> Running {
    Running::start(&[
        "online",
        "--profile",
        profile.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
}
