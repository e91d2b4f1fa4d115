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
use std::process::{Child, Command, Stdio};
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
    /// Supernodes started so far (by account), to wait for each one's first announcement.
    announced: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl Network {
    pub fn new(users: &[&str], supernodes: &[&str]) -> Self {
        let accounts: Vec<(&str, &str)> = users
            .iter()
            .map(|u| (*u, "user"))
            .chain(supernodes.iter().map(|s| (*s, "supernode")))
            .collect();
        Self::with(&accounts, "")
    }

    /// An auth-server with `accounts` (name, role) whose configuration file holds
    /// `auth_config` (TOML).
    pub fn with(accounts: &[(&str, &str)], auth_config: &str) -> Self {
        Self::with_on(accounts, auth_config, "127.0.0.1:0")
    }

    /// As [`Self::with`], with the auth-server listening on `listen` (`[::]:0` takes both
    /// IPv4 and IPv6: a test then has two source addresses on one host, 127.0.0.1 and ::1).
    pub fn with_on(accounts: &[(&str, &str)], auth_config: &str, listen: &str) -> Self {
        let dir = temp_dir();
        let data = dir.path().join("auth");
        let data = data.to_str().unwrap();
        let output = Binary::AuthServer
            .run(&["init", "--data-dir", data])
            .unwrap();
        let pubkey = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        for (name, role) in accounts {
            let out = Binary::AuthServer
                .run_with_stdin(
                    &["user", "add", name, "--role", role, "--data-dir", data],
                    &format!("{PASSWORD}\n"),
                )
                .unwrap();
            assert!(out.status.success());
        }
        std::fs::write(dir.path().join("pw"), format!("{PASSWORD}\n")).unwrap();
        let config = dir.path().join("auth.toml");
        std::fs::write(&config, auth_config).unwrap();
        let auth = Binary::AuthServer
            .spawn_daemon(
                &[
                    "serve",
                    "--config",
                    config.to_str().unwrap(),
                    "--data-dir",
                    data,
                    "--listen",
                    listen,
                    "--metrics",
                    "127.0.0.1:0",
                ],
                READY,
            )
            .unwrap();
        Self {
            dir,
            pubkey,
            auth,
            announced: std::cell::RefCell::default(),
        }
    }

    /// Where to reach the auth-server (its IPv4 loopback address when it listens on `[::]`).
    pub fn auth_addr(&self) -> std::net::SocketAddr {
        let addr = self.auth.addr();
        if addr.ip().is_unspecified() {
            std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
        } else {
            addr
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts supernode `name` and waits for its readiness line and first announcement.
    pub fn supernode(&self, name: &str, extra: &[&str]) -> Daemon {
        let args = self.supernode_args(name, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let daemon = Binary::Supernode.spawn_daemon(&args, READY).unwrap();
        self.wait_announced(name);
        daemon
    }

    /// The arguments of `supernode serve` for account `name`, with `extra` appended.
    pub fn supernode_args(&self, name: &str, extra: &[&str]) -> Vec<String> {
        // `--listen` in `extra` replaces the default (clap takes a flag once).
        let listen = if extra.contains(&"--listen") {
            Vec::new()
        } else {
            vec!["--listen", "127.0.0.1:0"]
        };
        let mut args: Vec<String> = ["serve", "--data-dir", self.path(name).to_str().unwrap()]
            .iter()
            .chain(&listen)
            .map(|a| (*a).to_owned())
            .collect();
        let rest: Vec<String> = [
            "--metrics",
            "127.0.0.1:0",
            "--auth",
            &self.auth_addr().to_string(),
            "--trust",
            &self.pubkey,
            "--user",
            name,
            "--password-file",
            self.path("pw").to_str().unwrap(),
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
        args.extend(rest);
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    }

    /// Kills the auth-server (SIGKILL): the network must go on without it.
    pub fn kill_auth(&mut self) {
        self.auth.signal("KILL").unwrap();
        assert!(self.auth.wait_exit(Duration::from_secs(10)).is_some());
    }

    /// Waits for the first announcement of supernode `name`.
    pub fn wait_announced(&self, name: &str) {
        // Its first announcement puts it in the auth-server's bootstrap list, which the logins
        // that follow hand out: wait for it, so that they do not race it.
        self.announced.borrow_mut().insert(name.to_owned());
        let expected = self.announced.borrow().len() as u64;
        let started = Instant::now();
        assert!(
            wait_until(READY, || metric(
                &self.auth,
                "switchboard_auth_supernodes_announced"
            )
            .is_some_and(|n| n >= expected)),
            "{name} did not announce itself within {READY:?} (the auth-server lists {:?})",
            metric(&self.auth, "switchboard_auth_supernodes_announced")
        );
        println!(
            "{name} announced {:?} after its readiness line",
            started.elapsed()
        );
    }

    pub fn login(&self, user: &str) -> PathBuf {
        self.login_at(user, &format!("profile-{user}"))
    }

    /// `client login` for `user` into the profile directory `name` (another device of the
    /// user when `name` is new); panics if it fails.
    pub fn login_at(&self, user: &str, name: &str) -> PathBuf {
        let profile = self.path(name);
        let output = Binary::Client
            .run_with_stdin(
                &[
                    "login",
                    "--profile",
                    profile.to_str().unwrap(),
                    "--auth",
                    &self.auth_addr().to_string(),
                    "--trust",
                    &self.pubkey,
                    "--user",
                    user,
                ],
                &format!("{PASSWORD}\n"),
            )
            .unwrap();
        assert!(
            output.status.success(),
            "login of {user} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        profile
    }
}

/// Writes a profile for `user` whose ticket is minted by `signer` (the real auth key, or a
/// forger's), valid from `issued` for `lifetime` seconds, with the host cache of `from`.
pub fn minted_profile(
    network: &Network,
    from: &Path,
    user: &str,
    signer: &switchboard_proto::SecretKey,
    issued: u64,
    lifetime: u64,
) -> PathBuf {
    use switchboard_client::profile::{Profile, Settings};
    use switchboard_proto::{Role, Ticket, TicketBody, UnixTime, Username};
    let dir = network.path(&format!("minted-{user}-{issued}"));
    let profile = Profile::new(&dir);
    profile.create().unwrap();
    let key = profile.node_key().unwrap();
    let ticket = Ticket::issue(
        signer,
        TicketBody {
            user: Username::new(user).unwrap(),
            node: key.node_id(),
            role: Role::User,
            issued_at: UnixTime(issued),
            expires_at: UnixTime(issued + lifetime),
            serial: issued,
        },
    )
    .unwrap();
    profile.save_ticket(&ticket).unwrap();
    profile
        .save_settings(&Settings {
            user: user.to_owned(),
            auth: network.auth_addr().to_string(),
            trust: network.pubkey.clone(),
        })
        .unwrap();
    profile
        .save_hosts(Profile::new(from).hosts().unwrap())
        .unwrap();
    dir
}

/// A counter or gauge from a daemon's `/metrics`.
pub fn metric(daemon: &Daemon, name: &str) -> Option<u64> {
    metric_at(daemon.metrics_addr()?, name)
}

/// A counter or gauge from the `/metrics` page at `addr`.
pub fn metric_at(addr: std::net::SocketAddr, name: &str) -> Option<u64> {
    let body = http_get(addr, "/metrics").ok()?;
    body.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Waits until the supernodes' indexes hold `records` copies in all (each user's record on
/// its owners).
pub fn wait_for_index(supernodes: &[Daemon], records: u64) {
    let total = || {
        supernodes
            .iter()
            .map(|s| metric(s, "switchboard_overlay_index_records").unwrap_or(0))
            .sum::<u64>()
    };
    assert!(
        wait_until(Duration::from_secs(30), || total() >= records),
        "the owners hold {} record copies, not {records}",
        total()
    );
}

/// Waits until every one of `supernodes` counts `members` live members in the overlay.
pub fn wait_for_overlay(supernodes: &[&Daemon], members: u64) {
    let started = Instant::now();
    assert!(
        wait_until(Duration::from_secs(30), || supernodes.iter().all(
            |s| metric(s, "switchboard_overlay_members_live") == Some(members)
        )),
        "no overlay of {members}: {:?}",
        supernodes
            .iter()
            .map(|s| metric(s, "switchboard_overlay_members_live"))
            .collect::<Vec<_>>()
    );
    println!("overlay of {members} after {:?}", started.elapsed());
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
        Self::spawn(Binary::Client.command(args).unwrap())
    }

    /// Runs `client ARGS` inside network namespace `netns` (`ip netns exec`).
    #[allow(dead_code)]
    pub fn start_in(netns: &str, args: &[&str]) -> Self {
        let mut command = std::process::Command::new("ip");
        command
            .args(["netns", "exec", netns])
            .arg(Binary::Client.path().unwrap())
            .args(args);
        Self::spawn(command)
    }

    fn spawn(mut command: std::process::Command) -> Self {
        let mut child = command
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

    /// Every line seen so far (takes what arrived meanwhile first).
    pub fn seen_lines(&mut self) -> Vec<String> {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen.clone()
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

    /// Waits (at most `timeout`) for the command to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        switchboard_tests::wait_child(&mut self.child, timeout)
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

/// Whether this test may make network namespaces (root and `ip`, as on CI's machine kind).
/// Without them a test that needs them fails, unless `SWITCHBOARD_SKIP_ROOT_TESTS=1` says to
/// skip it knowingly: then this prints so and returns false.
pub fn netns_or_skip() -> bool {
    let ip = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|o| o.status.success());
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if ip && root {
        return true;
    }
    let skip = std::env::var("SWITCHBOARD_SKIP_ROOT_TESTS").is_ok_and(|v| v == "1");
    assert!(
        skip,
        "this test needs root and `ip` to make network namespaces; \
         set SWITCHBOARD_SKIP_ROOT_TESTS=1 to skip it knowingly"
    );
    println!("skipped (SWITCHBOARD_SKIP_ROOT_TESTS=1): needs root and ip netns");
    false
}

/// Runs `ip ARGS`, panicking with its output on failure.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A one-shot `BINARY ARGS` on host `netns`, `stdin` written to it: (success, stdout, stderr).
pub fn run_in(netns: &str, binary: Binary, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns])
        .arg(binary.path().unwrap())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(mut pipe) = child.stdin.take() {
        let _ = pipe.write_all(stdin.as_bytes());
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A gauge from `/metrics` on 127.0.0.1:`port` of host `netns`, read as the guide shows
/// (`curl` on the supernode's own host).
pub fn metric_on(netns: &str, port: u16, name: &str) -> Option<u64> {
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "curl", "-s", "--max-time", "2"])
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// What a supernode on a host of its own (a network namespace) needs: where the auth-server
/// is, its key, the service accounts' password file, and the directory for data directories.
pub struct HostedNetwork<'a> {
    pub auth: &'a str,
    pub pubkey: &'a str,
    pub secret: &'a Path,
    pub dir: &'a Path,
}

impl HostedNetwork<'_> {
    /// `supernode serve` for account `name` on host `netns`, listening on all interfaces at
    /// port 7710 and announcing `public`, metrics on 127.0.0.1:9710 of its host.
    pub fn supernode(&self, netns: &str, name: &str, public: &str, extra: &[&str]) -> Daemon {
        let data = self.dir.join(name);
        let mut args = vec![
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "0.0.0.0:7710",
            "--public-addr",
            public,
            "--auth",
            self.auth,
            "--trust",
            self.pubkey,
            "--user",
            name,
            "--password-file",
            self.secret.to_str().unwrap(),
            "--metrics",
            "127.0.0.1:9710",
        ];
        args.extend_from_slice(extra);
        Binary::Supernode
            .spawn_daemon_in(netns, &args, READY)
            .unwrap()
    }

    /// `client login` of `name` (password `NAME-password`) into `profile` on host `netns`, then
    /// `client online` there on all interfaces at port 4433.
    pub fn online(&self, netns: &str, name: &str, profile: &Path) -> Running {
        let (ok, _, stderr) = run_in(
            netns,
            Binary::Client,
            &[
                "login",
                "--profile",
                profile.to_str().unwrap(),
                "--auth",
                self.auth,
                "--trust",
                self.pubkey,
                "--user",
                name,
            ],
            &format!("{name}-password\n"),
        );
        assert!(ok, "{stderr}");
        Running::start_in(
            netns,
            &[
                "online",
                "--profile",
                profile.to_str().unwrap(),
                "--listen",
                "0.0.0.0:4433",
            ],
        )
    }
}
