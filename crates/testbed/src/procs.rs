//! The testbed's processes: this executable run again as one of the programs, with its output
//! collected line by line, stopped with real signals.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// The hidden first argument that makes `testbed` run one of the programs.
pub const EXEC: &str = "exec";

/// Lines of a process's output kept for the view and for error reports; older ones go (a
/// daemon logs for as long as it runs).
pub const MAX_LINES_KEPT: usize = 2_000;

/// Runs one of the programs in this process: `ROLE ARGS...`, ROLE being `auth-server`,
/// `supernode` or `client`.
pub fn exec(args: Vec<OsString>) -> ExitCode {
    let Some(role) = args.first().and_then(|r| r.to_str()).map(str::to_owned) else {
        eprintln!("testbed exec: which program? (auth-server, supernode or client)");
        return ExitCode::from(2);
    };
    switchboard_client_app::init_logging();
    match role.as_str() {
        "auth-server" => parsed::<switchboard_auth_server::Cli>(args, switchboard_auth_server::run),
        "supernode" => parsed::<switchboard_supernode::Cli>(args, switchboard_supernode::run),
        "client" => switchboard_client_app::run(args),
        "raw-quinn" => crate::rawquinn::serve(),
        other => {
            eprintln!("testbed exec: unknown program {other:?}");
            ExitCode::from(2)
        }
    }
}

fn parsed<C: clap::Parser>(args: Vec<OsString>, run: fn(C) -> ExitCode) -> ExitCode {
    match C::try_parse_from(args) {
        Ok(cli) => run(cli),
        Err(e) => {
            let _ = e.print();
            ExitCode::from(if e.use_stderr() { 2 } else { 0 })
        }
    }
}

/// The command that runs `role` with `args` as a process of this executable.
fn command(role: &str, args: &[String]) -> anyhow::Result<tokio::process::Command> {
    let exe = std::env::current_exe().context("the testbed's own executable")?;
    let mut command = tokio::process::Command::new(exe);
    command.arg(EXEC).arg(role).args(args).kill_on_drop(true);
    // A process group of its own: Ctrl-C at the terminal reaches the testbed only, which then
    // stops its processes in order (clients, supernodes, auth-server).
    #[cfg(unix)]
    command.process_group(0);
    Ok(command)
}

/// Runs `role ARGS` to its end with `stdin`; its stdout, or its stderr as the error.
pub async fn run_to_end(role: &str, args: &[String], stdin: &str) -> anyhow::Result<String> {
    let mut child = command(role, args)?
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {role}"))?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).await?;
    }
    let output = child.wait_with_output().await?;
    if !output.status.success() {
        bail!(
            "{role} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A running process and what it printed (stdout and stderr, as lines).
#[derive(Debug)]
pub struct Proc {
    /// Its name in the view.
    pub name: String,
    child: tokio::process::Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
    /// Lines received in all (the first kept one is number `total - seen.len()`).
    total: usize,
    killed: bool,
}

impl Proc {
    /// Starts `role ARGS` as `name`; its output is also appended to `log`.
    pub fn spawn(name: &str, role: &str, args: &[String], log: &Path) -> anyhow::Result<Self> {
        let mut child = command(role, args)?
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let (tx, lines) = mpsc::unbounded_channel();
        let log: PathBuf = log.to_path_buf();
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        tokio::spawn(forward(BufReader::new(stdout), tx.clone(), log.clone()));
        tokio::spawn(forward(BufReader::new(stderr), tx, log));
        Ok(Self {
            name: name.to_owned(),
            child,
            lines,
            seen: Vec::new(),
            total: 0,
            killed: false,
        })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Takes what arrived since the last call; returns the new lines.
    pub fn drain(&mut self) -> Vec<String> {
        let mut new = Vec::new();
        while let Ok(line) = self.lines.try_recv() {
            new.push(line);
        }
        self.total += new.len();
        self.seen.extend(new.iter().cloned());
        if self.seen.len() > MAX_LINES_KEPT {
            let excess = self.seen.len() - MAX_LINES_KEPT;
            self.seen.drain(..excess);
        }
        new
    }

    /// Every line kept so far.
    pub fn seen(&mut self) -> &[String] {
        self.drain();
        &self.seen
    }

    /// A mark for [`Self::expect_after`]: lines received so far.
    pub fn mark(&mut self) -> usize {
        self.drain();
        self.total
    }

    /// Waits (at most `timeout`) for a line containing `needle` among those received after
    /// `mark`.
    pub async fn expect_after(
        &mut self,
        mark: usize,
        needle: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.drain();
            let first_kept = self.total - self.seen.len();
            let from = mark.saturating_sub(first_kept);
            if let Some(line) = self.seen.iter().skip(from).find(|l| l.contains(needle)) {
                return Ok(line.clone());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{} printed no {needle:?} within {timeout:?} (last lines: {:?})",
                    self.name,
                    self.seen.iter().rev().take(5).collect::<Vec<_>>()
                );
            }
            if self.exited() {
                bail!("{} exited before printing {needle:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (at most `timeout`) for a line containing `needle` printed from now on.
    pub async fn expect(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        let mark = self.mark();
        self.expect_after(mark, needle, timeout).await
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        self.killed = true;
        let _ = self.child.start_kill();
    }

    /// Whether it was killed by the testbed.
    pub fn killed(&self) -> bool {
        self.killed
    }

    /// Whether it exited (by itself, unless killed).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Sends SIGTERM (a graceful stop: a supernode drains, a client goes offline).
    pub fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    /// Waits for the exit, at most `grace`, then SIGKILL.
    pub async fn wait_or_kill(&mut self, grace: Duration) {
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}

async fn forward<R: tokio::io::AsyncRead + Unpin>(
    reader: BufReader<R>,
    tx: mpsc::UnboundedSender<String>,
    log: PathBuf,
) {
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .await
        .ok();
    let mut lines = reader.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(file) = file.as_mut() {
            let _ = file.write_all(format!("{line}\n").as_bytes()).await;
        }
        if tx.send(line).is_err() {
            return;
        }
    }
}
