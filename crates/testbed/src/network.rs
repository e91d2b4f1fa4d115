//! A network for the load generator and the outage replay: an auth-server whose key, database
//! and accounts live in a cache directory (reused across runs), and supernodes as real
//! processes in a scratch directory.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use switchboard_client::profile::{Host, Profile};

use crate::procs::{run_to_end, Proc};

/// The logical clients' account prefix and password (a throwaway test fleet).
pub const PREFIX: &str = "load";
/// Their password.
pub const PASSWORD: &str = "load-password";
/// How long a process may take to print its readiness line.
const READY: Duration = Duration::from_secs(30);

/// One supernode to start.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Its account and name.
    pub name: String,
    /// `supernode` or `mega`.
    pub role: &'static str,
    /// Extra `supernode serve` arguments (`--mega --standby`, a `--config`).
    pub extra: Vec<String>,
    /// Its capacity.
    pub capacity: u32,
}

/// A started supernode.
#[derive(Debug, Clone)]
pub struct Started {
    /// Its name.
    pub name: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Its `/metrics` address.
    pub metrics: SocketAddr,
    /// Its node id (hex).
    pub node: String,
    /// Its capacity.
    pub capacity: u32,
    /// Its index in the process list.
    pub proc: usize,
    /// Whether it is a standby mega.
    pub standby: bool,
}

/// The started network.
#[derive(Debug)]
pub struct Network {
    /// The auth-server's address.
    pub auth_addr: String,
    /// Its public key (hex).
    pub pubkey: String,
    /// Host cache entries for the ordinary supernodes (what a login's bootstrap list holds).
    pub hosts: Vec<Host>,
    /// Every supernode.
    pub supernodes: Vec<Started>,
    /// The supernodes' password file.
    password_file: std::path::PathBuf,
    /// The first supernode's address, which the others join through.
    seed: Option<String>,
}

/// Strings from string slices.
pub fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| (*p).to_owned()).collect()
}

/// Starts the auth-server (with `clients` accounts `load00000..`, and a service account for
/// each of `specs` and `later`) and the supernodes of `specs` (those of `later` are the
/// caller's to start, with [`Network::start_supernode`]); every process goes into `procs`, so
/// that the caller stops them whatever happens.
pub async fn start(
    cache: &Path,
    scratch: &Path,
    clients: u32,
    specs: &[Spec],
    later: &[Spec],
    procs: &mut Vec<Proc>,
) -> anyhow::Result<Network> {
    std::fs::create_dir_all(cache).with_context(|| format!("{}", cache.display()))?;
    let auth_dir = cache.join("auth");
    let text = |p: &Path| p.display().to_string();
    if !auth_dir.join("auth.key").exists() {
        run_to_end(
            "auth-server",
            &strings(&["init", "--data-dir", &text(&auth_dir)]),
            "",
        )
        .await?;
    }
    let pubkey = run_to_end(
        "auth-server",
        &strings(&["pubkey", "--data-dir", &text(&auth_dir)]),
        "",
    )
    .await?
    .trim()
    .to_owned();
    let password = format!("{PASSWORD}\n");
    let count = clients.to_string();
    let add_many = [
        "user",
        "add-many",
        PREFIX,
        &count,
        "--data-dir",
        &text(&auth_dir),
    ];
    run_to_end("auth-server", &strings(&add_many), &password).await?;
    for spec in specs.iter().chain(later) {
        // A service account each (added once; an existing one is kept).
        let add = [
            "user",
            "add",
            &spec.name,
            "--role",
            spec.role,
            "--data-dir",
            &text(&auth_dir),
        ];
        let _ = run_to_end("auth-server", &strings(&add), &password).await;
    }
    // Every logical client logs in from 127.0.0.1: the per-address throttle is raised for
    // this test network (a real one sees them from as many addresses).
    let auth_config = scratch.join("auth.toml");
    std::fs::write(
        &auth_config,
        "max_queued_logins = 1000\n[throttle]\nattempts_per_sec = 10000\nburst = 10000\n",
    )?;
    let serve = [
        "serve",
        "--config",
        &text(&auth_config),
        "--data-dir",
        &text(&auth_dir),
        "--listen",
        "127.0.0.1:0",
    ];
    let mut auth = Proc::spawn(
        "auth-server",
        "auth-server",
        &strings(&serve),
        &scratch.join("auth.log"),
    )?;
    let line = auth.expect("listening on ", READY).await?;
    let auth_addr = line.trim_start_matches("listening on ").trim().to_owned();
    procs.push(auth);
    let password_file = scratch.join("password");
    std::fs::write(&password_file, &password)?;
    let mut network = Network {
        auth_addr,
        pubkey,
        hosts: Vec::new(),
        supernodes: Vec::new(),
        password_file,
        seed: None,
    };
    for spec in specs {
        network.start_supernode(scratch, spec, procs).await?;
    }
    Ok(network)
}

impl Network {
    /// Starts the supernode of `spec` (its account must exist: [`start`] makes them), joining through the first one started; it goes
    /// into `procs` and [`Network::supernodes`], and into [`Network::hosts`] unless a standby.
    pub async fn start_supernode(
        &mut self,
        scratch: &Path,
        spec: &Spec,
        procs: &mut Vec<Proc>,
    ) -> anyhow::Result<Started> {
        let text = |p: &Path| p.display().to_string();
        let capacity = spec.capacity.to_string();
        let mut args = strings(&[
            "serve",
            "--data-dir",
            &text(&scratch.join(&spec.name)),
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
            "--auth",
            &self.auth_addr,
            "--trust",
            &self.pubkey,
            "--user",
            &spec.name,
            "--password-file",
            &text(&self.password_file),
            "--capacity",
            &capacity,
        ]);
        if let Some(seed) = &self.seed {
            args.extend(["--seed".to_owned(), seed.clone()]);
        }
        args.extend(spec.extra.iter().cloned());
        let log = scratch.join(format!("{}.log", spec.name));
        let mut proc = Proc::spawn(&spec.name, "supernode", &args, &log)?;
        let line = proc.expect("listening on ", READY).await?;
        let addr: SocketAddr = line.trim_start_matches("listening on ").trim().parse()?;
        let metrics: SocketAddr = proc
            .seen()
            .iter()
            .find_map(|l| l.strip_prefix("metrics on "))
            .ok_or_else(|| anyhow!("{} printed no metrics address", spec.name))?
            .trim()
            .parse()?;
        self.seed.get_or_insert(addr.to_string());
        let standby = spec.extra.iter().any(|a| a == "--standby");
        let node = Profile::new(&scratch.join(&spec.name))
            .node_key()?
            .node_id();
        if !standby {
            self.hosts.push(Host {
                node: node.to_string(),
                addr,
                mode: if spec.role == "mega" {
                    "mega"
                } else {
                    "normal"
                }
                .to_owned(),
                load_permille: 0,
                last_success: None,
                last_failure: None,
            });
        }
        procs.push(proc);
        let started = Started {
            name: spec.name.clone(),
            addr,
            metrics,
            node: node.to_string(),
            capacity: spec.capacity,
            proc: procs.len() - 1,
            standby,
        };
        self.supernodes.push(started.clone());
        Ok(started)
    }
}

/// Logical clients per loopback source address: under the supernodes' per-source cap on
/// handshakes in flight (32, `switchboard_net::gate`).
pub const CLIENTS_PER_ADDRESS: usize = 16;

/// Sockets for `clients` logical clients, [`CLIENTS_PER_ADDRESS`] to a loopback address of
/// their own (127.1.0.1, 127.1.0.2, ... 127.1.0.250, 127.1.1.1, ...: all of 127/8 is loopback),
/// so that the supernodes' per-source handshake cap sees many users' addresses, as it would on
/// the Internet, not one. Client `i` uses `endpoints[i / CLIENTS_PER_ADDRESS]`.
pub fn client_endpoints(clients: usize) -> anyhow::Result<Vec<quinn::Endpoint>> {
    let mut endpoints = Vec::new();
    for i in 0..clients.div_ceil(CLIENTS_PER_ADDRESS) {
        let third = u8::try_from(i / 250).context("too many clients for 127.1.0.0/16")?;
        let fourth = u8::try_from(i % 250 + 1).unwrap_or(u8::MAX);
        let ip = std::net::Ipv4Addr::new(127, 1, third, fourth);
        endpoints.push(quinn::Endpoint::client(SocketAddr::from((ip, 0)))?);
    }
    Ok(endpoints)
}

/// A gauge or counter from the `/metrics` at `addr` (none if it does not answer in 2 s).
pub async fn metric(addr: SocketAddr, name: &str) -> Option<u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: testbed\r\n\r\n")
            .await
            .ok()?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await.ok()?;
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
    };
    tokio::time::timeout(Duration::from_secs(2), fetch)
        .await
        .ok()
        .flatten()
}

/// The frame of a `load`, `cpu` or `outage` run: a scratch directory removed at the end, the
/// account cache, and every process started, stopped whatever happens (an error, Ctrl-C).
#[derive(Debug)]
pub struct Scenario {
    /// Logs and supernode data of this run (removed when the run ends).
    pub scratch: tempfile::TempDir,
    /// The account and ticket cache kept between runs.
    pub cache: std::path::PathBuf,
    /// Every process started, in start order.
    pub procs: Vec<Proc>,
}

impl Scenario {
    /// A scratch directory named `prefix...` in the system's temporary directory, and the cache
    /// at `cache` (default: `switchboard-testbed-cache` in the temporary directory).
    pub fn new(prefix: &str, cache: Option<std::path::PathBuf>) -> anyhow::Result<Self> {
        let scratch = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .context("temporary directory")?;
        Ok(Self {
            scratch,
            cache: cache.unwrap_or_else(|| std::env::temp_dir().join("switchboard-testbed-cache")),
            procs: Vec::new(),
        })
    }

    /// Stops every process (newest first), removes the scratch directory and turns the outcome
    /// (`None`: interrupted) into the exit code, printing a success with `print`.
    pub async fn finish<T>(
        mut self,
        what: &str,
        outcome: Option<anyhow::Result<T>>,
        print: impl FnOnce(T),
    ) -> std::process::ExitCode {
        crate::demo::stop_all(self.procs.iter_mut().rev().collect()).await;
        drop(self.scratch);
        match outcome {
            Some(Ok(value)) => {
                print(value);
                std::process::ExitCode::SUCCESS
            }
            None => std::process::ExitCode::from(crate::EXIT_INTERRUPTED),
            Some(Err(e)) => {
                eprintln!("{what} failed: {e:#}");
                std::process::ExitCode::FAILURE
            }
        }
    }
}
