//! `testbed demo`: a whole network on loopback, as real processes, in under a minute: an
//! auth-server with a fresh database, 4 supernodes, a mega-supernode on standby and 6 clients.
//! It shows the overlay forming, every client online, lookups and a direct message; then
//! SIGKILLs the 2 supernodes holding the most clients and shows the clients re-homing, the
//! standby mega stepping in by itself and lookups succeeding again; then a summary. Every
//! process and file it made is removed at the end, also on Ctrl-C (exit 130) or a failure
//! (exit 1, with the reason).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};

use crate::network::metric;
use crate::procs::{run_to_end, Proc};
use crate::view::View;

/// Options of `testbed demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where to make the temporary directory (default: the system's).
    #[arg(long, value_name = "DIR")]
    pub tmp: Option<PathBuf>,
}

const SUPERNODES: [&str; 4] = ["sn1", "sn2", "sn3", "sn4"];
const MEGA: &str = "mega1";
const CLIENTS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];
/// Every demo account's password (a throwaway network in a temporary directory).
const PASSWORD: &str = "demo-password";

/// How long each step may take before the demo gives up (generous for a loaded 2-core
/// machine; the demo as a whole takes about 30 s there).
const STEP: Duration = Duration::from_secs(30);
/// How often the view polls `/metrics`.
const POLL: Duration = Duration::from_millis(250);
/// How long a process gets to exit after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// One supernode of the demo.
#[derive(Debug)]
struct Supernode {
    proc: Proc,
    addr: SocketAddr,
    metrics: SocketAddr,
}

/// The network and the view.
struct Net {
    dir: PathBuf,
    view: View,
    auth: Option<Proc>,
    auth_addr: String,
    pubkey: String,
    supernodes: BTreeMap<String, Supernode>,
    clients: BTreeMap<String, Proc>,
}

/// What the summary reports.
#[derive(Debug, Default)]
struct Figures {
    formed: Duration,
    online: Duration,
    lookups: (usize, usize),
    killed: Vec<String>,
    rehomed: Duration,
    mega: Option<Duration>,
    recovered: Duration,
    lookups_after: (usize, usize),
}

/// Runs the demo; see the module doc.
pub async fn run(args: DemoArgs) -> ExitCode {
    let mut builder = tempfile::Builder::new();
    builder.prefix("switchboard-demo-");
    let dir = match &args.tmp {
        Some(tmp) => builder.tempdir_in(tmp),
        None => builder.tempdir(),
    };
    let dir = match dir {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("testbed: temporary directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("workspace: {} (removed at the end)", dir.path().display());
    let mut net = Net {
        dir: dir.path().to_path_buf(),
        view: View::new(),
        auth: None,
        auth_addr: String::new(),
        pubkey: String::new(),
        supernodes: BTreeMap::new(),
        clients: BTreeMap::new(),
    };
    let outcome = tokio::select! {
        outcome = scenario(&mut net) => outcome.map(Some),
        () = interrupted() => Ok(None),
    };
    net.view.end_status();
    net.shutdown().await;
    let removed = dir.close();
    let code = match outcome {
        Ok(Some(figures)) => {
            summary(&figures);
            println!("demo succeeded; every process stopped");
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!("interrupted; every process stopped");
            ExitCode::from(crate::EXIT_INTERRUPTED)
        }
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            ExitCode::FAILURE
        }
    };
    match removed {
        Ok(()) => println!("workspace removed"),
        Err(e) => eprintln!("testbed: the workspace could not be removed: {e}"),
    }
    code
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
}

async fn scenario(net: &mut Net) -> anyhow::Result<Figures> {
    let mut figures = Figures::default();
    net.start_auth().await?;
    net.view.event(&format!(
        "auth-server up at {} (fresh database)",
        net.auth_addr
    ));
    net.start_supernodes().await?;
    net.wait("the overlay to form", |net| {
        Box::pin(async move {
            let mut all = true;
            for s in net.supernodes.values() {
                all &= metric(s.metrics, "switchboard_overlay_members_live").await == Some(5);
            }
            all
        })
    })
    .await?;
    figures.formed = net.view.elapsed();
    net.view
        .event("overlay formed: 4 supernodes and the standby mega see 5 live members");
    net.start_clients().await?;
    figures.online = net.view.elapsed();
    net.view.event("6 clients logged in and online");
    figures.lookups = net.lookup_round().await;
    net.view.event(&format!(
        "lookups: {} of {} found their peer, verified end to end",
        figures.lookups.0, figures.lookups.1
    ));
    net.message("alice", "bob", "hello from alice").await?;
    net.view
        .event("alice sent bob a message directly over QUIC; bob printed it");

    // The outage: the two supernodes holding the most clients die at once.
    let mut load = Vec::new();
    for name in SUPERNODES {
        if let Some(s) = net.supernodes.get(name) {
            let clients = metric(s.metrics, "switchboard_supernode_clients_connected").await;
            load.push((clients.unwrap_or(0), name));
        }
    }
    load.sort_by(|a, b| b.cmp(a));
    let victims: Vec<String> = load.iter().take(2).map(|(_, n)| (*n).to_owned()).collect();
    let killed_at = net.view.elapsed();
    for name in &victims {
        if let Some(s) = net.supernodes.get_mut(name) {
            s.proc.kill9();
        }
    }
    net.view.event(&format!(
        "SIGKILL {} (they held {} clients)",
        victims.join(" and "),
        load.iter().take(2).map(|(c, _)| c).sum::<u64>()
    ));
    figures.killed = victims;
    let mut mega_seen = None;
    net.wait("every client to re-home", |net| {
        Box::pin(async move { net.orphans().is_empty() })
    })
    .await?;
    figures.rehomed = net.view.elapsed().saturating_sub(killed_at);
    net.view.event(&format!(
        "every client re-homed on a live supernode, {:.1} s after the kill",
        figures.rehomed.as_secs_f64()
    ));
    if let Some(mega) = net.supernodes.get(MEGA) {
        let at = mega.metrics;
        let deadline = tokio::time::Instant::now() + STEP;
        while tokio::time::Instant::now() < deadline {
            if metric(at, "switchboard_supernode_mega_active").await == Some(1) {
                mega_seen = Some(net.view.elapsed().saturating_sub(killed_at));
                break;
            }
            net.refresh().await;
            tokio::time::sleep(POLL).await;
        }
    }
    let Some(mega_after) = mega_seen else {
        bail!("the standby mega did not step in within {STEP:?} of losing half the capacity");
    };
    figures.mega = Some(mega_after);
    net.view.event(&format!(
        "the standby mega stepped in by itself, {:.1} s after the kill",
        mega_after.as_secs_f64()
    ));
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        figures.lookups_after = net.lookup_round().await;
        if figures.lookups_after.0 == figures.lookups_after.1 {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "lookups still failing {STEP:?} after the kill: {} of {} found",
                figures.lookups_after.0,
                figures.lookups_after.1
            );
        }
    }
    figures.recovered = net.view.elapsed().saturating_sub(killed_at);
    net.view.event(&format!(
        "lookups: {} of {} found again, {:.1} s after the kill",
        figures.lookups_after.0,
        figures.lookups_after.1,
        figures.recovered.as_secs_f64()
    ));
    net.message("carol", "alice", "still here").await?;
    net.view
        .event("carol sent alice a message after the outage; alice printed it");
    let exited: Vec<String> = net.exited_on_their_own();
    if !exited.is_empty() {
        bail!("processes exited on their own: {exited:?}");
    }
    Ok(figures)
}

fn summary(f: &Figures) {
    println!();
    println!("summary");
    println!(
        "  overlay formed           {:>6.1} s after the start",
        f.formed.as_secs_f64()
    );
    println!(
        "  6 clients online         {:>6.1} s after the start",
        f.online.as_secs_f64()
    );
    println!(
        "  lookups before           {} of {}",
        f.lookups.0, f.lookups.1
    );
    println!("  killed (SIGKILL)         {}", f.killed.join(", "));
    println!(
        "  clients re-homed         {:>6.1} s after the kill",
        f.rehomed.as_secs_f64()
    );
    if let Some(mega) = f.mega {
        println!(
            "  standby mega active      {:>6.1} s after the kill",
            mega.as_secs_f64()
        );
    }
    println!(
        "  lookups found again      {:>6.1} s after the kill ({} of {})",
        f.recovered.as_secs_f64(),
        f.lookups_after.0,
        f.lookups_after.1
    );
    println!("  processes that exited on their own: 0");
}

impl Net {
    fn arg(&self, parts: &[&str]) -> Vec<String> {
        parts.iter().map(|p| (*p).to_owned()).collect()
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    async fn start_auth(&mut self) -> anyhow::Result<()> {
        let data = self.path("auth");
        let pubkey =
            run_to_end("auth-server", &self.arg(&["init", "--data-dir", &data]), "").await?;
        self.pubkey = pubkey.trim().to_owned();
        let password = format!("{PASSWORD}\n");
        let accounts = SUPERNODES
            .iter()
            .map(|n| (*n, "supernode"))
            .chain([(MEGA, "mega")])
            .chain(CLIENTS.iter().map(|n| (*n, "user")));
        for (name, role) in accounts {
            let args = self.arg(&["user", "add", name, "--role", role, "--data-dir", &data]);
            run_to_end("auth-server", &args, &password).await?;
        }
        let password_file = self.dir.join("password");
        std::fs::write(&password_file, &password).context("password file")?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600))?;
        }
        let args = self.arg(&[
            "serve",
            "--data-dir",
            &data,
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
        ]);
        let mut auth = Proc::spawn(
            "auth-server",
            "auth-server",
            &args,
            &self.dir.join("auth.log"),
        )?;
        let line = auth.expect("listening on ", STEP).await?;
        self.auth_addr = line.trim_start_matches("listening on ").trim().to_owned();
        self.auth = Some(auth);
        Ok(())
    }

    async fn start_supernodes(&mut self) -> anyhow::Result<()> {
        let mut seed: Option<SocketAddr> = None;
        for name in SUPERNODES.iter().chain([&MEGA]) {
            let data = self.path(name);
            let password = self.path("password");
            let mut args = self.arg(&[
                "serve",
                "--data-dir",
                &data,
                "--listen",
                "127.0.0.1:0",
                "--metrics",
                "127.0.0.1:0",
                "--auth",
                &self.auth_addr,
                "--trust",
                &self.pubkey,
                "--user",
                name,
                "--password-file",
                &password,
            ]);
            if let Some(seed) = seed {
                args.extend(["--seed".to_owned(), seed.to_string()]);
            }
            if *name == MEGA {
                args.extend(["--mega".to_owned(), "--standby".to_owned()]);
            }
            let log = self.dir.join(format!("{name}.log"));
            let mut proc = Proc::spawn(name, "supernode", &args, &log)?;
            let line = proc.expect("listening on ", STEP).await?;
            let addr: SocketAddr = line
                .trim_start_matches("listening on ")
                .trim()
                .parse()
                .with_context(|| format!("{name}'s address in {line:?}"))?;
            let metrics = proc
                .seen()
                .iter()
                .find_map(|l| l.strip_prefix("metrics on "))
                .ok_or_else(|| anyhow!("{name} printed no metrics address"))?
                .trim()
                .parse()?;
            seed.get_or_insert(addr);
            self.supernodes.insert(
                (*name).to_owned(),
                Supernode {
                    proc,
                    addr,
                    metrics,
                },
            );
            let role = if *name == MEGA {
                "mega-supernode on standby"
            } else {
                "supernode"
            };
            self.view.event(&format!("{name} up at {addr} ({role})"));
        }
        Ok(())
    }

    async fn start_clients(&mut self) -> anyhow::Result<()> {
        let password = format!("{PASSWORD}\n");
        for name in CLIENTS {
            let profile = self.path(name);
            let args = self.arg(&[
                "login",
                "--profile",
                &profile,
                "--auth",
                &self.auth_addr,
                "--trust",
                &self.pubkey,
                "--user",
                name,
            ]);
            run_to_end("client", &args, &password).await?;
            let args = self.arg(&["online", "--profile", &profile, "--listen", "127.0.0.1:0"]);
            let log = self.dir.join(format!("{name}.log"));
            let proc = Proc::spawn(name, "client", &args, &log)?;
            self.clients.insert(name.to_owned(), proc);
        }
        self.wait("every client to go online", |net| {
            Box::pin(async move {
                net.clients
                    .values_mut()
                    .all(|c| c.seen().iter().any(|l| l.contains("online via")))
            })
        })
        .await
    }

    /// Each client looks the next one up; (found, asked).
    async fn lookup_round(&mut self) -> (usize, usize) {
        let mut found = 0;
        for (from, whom) in CLIENTS.iter().zip(CLIENTS.iter().cycle().skip(1)) {
            let args = self.arg(&["lookup", whom, "--profile", &self.path(from)]);
            if run_to_end("client", &args, "").await.is_ok() {
                found += 1;
            }
            self.refresh().await;
        }
        (found, CLIENTS.len())
    }

    async fn message(&mut self, from: &str, to: &str, text: &str) -> anyhow::Result<()> {
        let args = self.arg(&["send", to, text, "--profile", &self.path(from)]);
        let mark = self
            .clients
            .get_mut(to)
            .ok_or_else(|| anyhow!("no client {to}"))?
            .mark();
        run_to_end("client", &args, "").await?;
        let receiver = self
            .clients
            .get_mut(to)
            .ok_or_else(|| anyhow!("no client {to}"))?;
        receiver
            .expect_after(mark, &format!("from {from}: {text}"), STEP)
            .await
            .map(|_| ())
    }

    /// The supernode each client is online via now, by name (from its `online via` lines).
    fn homes(&mut self) -> BTreeMap<String, String> {
        let by_addr: BTreeMap<String, String> = self
            .supernodes
            .iter()
            .map(|(name, s)| (s.addr.to_string(), name.clone()))
            .collect();
        let mut homes = BTreeMap::new();
        for (name, proc) in &mut self.clients {
            let home = proc
                .seen()
                .iter()
                .rev()
                .find_map(|l| l.split(" at ").nth(1).filter(|_| l.contains("online via")))
                .and_then(|addr| addr.split_whitespace().next())
                .and_then(|addr| by_addr.get(addr).cloned());
            if let Some(home) = home {
                homes.insert(name.clone(), home);
            }
        }
        homes
    }

    /// Clients whose latest home was killed.
    fn orphans(&mut self) -> Vec<String> {
        let killed: Vec<String> = self
            .supernodes
            .iter()
            .filter(|(_, s)| s.proc.killed())
            .map(|(n, _)| n.clone())
            .collect();
        let homes = self.homes();
        CLIENTS
            .iter()
            .filter(|c| homes.get(**c).is_none_or(|h| killed.contains(h)))
            .map(|c| (*c).to_owned())
            .collect()
    }

    /// Processes that exited although nobody killed them.
    fn exited_on_their_own(&mut self) -> Vec<String> {
        let mut exited = Vec::new();
        for (name, s) in &mut self.supernodes {
            if !s.proc.killed() && s.proc.exited() {
                exited.push(name.clone());
            }
        }
        for (name, c) in &mut self.clients {
            if c.exited() {
                exited.push(name.clone());
            }
        }
        if self.auth.as_mut().is_some_and(Proc::exited) {
            exited.push("auth-server".to_owned());
        }
        exited
    }

    /// Redraws the status table from `/metrics` and the clients' lines.
    async fn refresh(&mut self) {
        let mut rows = vec![format!(
            "  {:<8} {:<9} {:>7} {:>8}",
            "node", "state", "clients", "members"
        )];
        for (name, s) in &mut self.supernodes {
            let (state, clients, members) = if s.proc.killed() {
                ("KILLED".to_owned(), "-".to_owned(), "-".to_owned())
            } else {
                let clients = metric(s.metrics, "switchboard_supernode_clients_connected").await;
                let members = metric(s.metrics, "switchboard_overlay_members_live").await;
                let state = if name == MEGA {
                    match metric(s.metrics, "switchboard_supernode_mega_active").await {
                        Some(1) => "ACTIVE",
                        _ => "standby",
                    }
                } else {
                    "up"
                };
                let show = |v: Option<u64>| v.map_or("?".to_owned(), |v| v.to_string());
                (state.to_owned(), show(clients), show(members))
            };
            rows.push(format!("  {name:<8} {state:<9} {clients:>7} {members:>8}"));
        }
        let homes = self.homes();
        let line: Vec<String> = CLIENTS
            .iter()
            .map(|c| format!("{c}@{}", homes.get(*c).map_or("?", String::as_str)))
            .collect();
        rows.push(format!("  clients: {}", line.join(" ")));
        self.view.status(rows);
    }

    /// Polls `done` (and redraws the view) until it holds, at most [`STEP`].
    async fn wait<F>(&mut self, what: &str, mut done: F) -> anyhow::Result<()>
    where
        F: for<'a> FnMut(
            &'a mut Self,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>>,
    {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            self.refresh().await;
            if done(self).await {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("gave up waiting for {what} after {STEP:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops every process: SIGTERM to the clients, then to the supernodes, then to the
    /// auth-server, each group given [`GRACE`] before SIGKILL.
    async fn shutdown(&mut self) {
        let clients: Vec<&mut Proc> = self.clients.values_mut().collect();
        stop_all(clients).await;
        let supernodes: Vec<&mut Proc> =
            self.supernodes.values_mut().map(|s| &mut s.proc).collect();
        stop_all(supernodes).await;
        stop_all(self.auth.iter_mut().collect()).await;
    }
}

/// SIGTERM to all, then waits for each (SIGKILL after [`GRACE`]).
pub(crate) async fn stop_all(procs: Vec<&mut Proc>) {
    for proc in &procs {
        proc.terminate();
    }
    for proc in procs {
        proc.wait_or_kill(GRACE).await;
    }
}
