//! `testbed relay`: what a supernode's relay forwards, what it costs, and whether its caps hold
//! (issue #14's acceptance).
//!
//! Two real supernodes: `relayfree`, whose caps are set out of reach (what the forwarding
//! itself can do, and its CPU per megabyte), and `relaycapped`, with 1 MiB/s per session and
//! 4 MiB/s in all: do the caps hold against senders paced above them (one at 3x the session
//! cap; eight at 1.5x it, 3x the total), and is a sender flooding as fast as it can ended
//! (`switchboard_engine::FLOOD_SECONDS`) rather than read and dropped for ever? At each, pairs of
//! made-up devices open sessions: the callee joins the relay its home offers it (the push a real
//! client answers), the caller asks for it, binds its side and then offers datagrams as fast as
//! it can (or at a pace) for `--secs` seconds (at most [`MAX_DATAGRAMS`]); the callee counts what
//! arrives. The
//! datagrams are not QUIC: the relay forwards bytes without reading them, so what it costs does
//! not depend on what they hold.
//!
//! Sender, receivers and the relay share this machine's 2 cores: the forwarded rate is a floor
//! of what the relay can do on a machine of its own.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use switchboard_client::online::read_pushes;
use switchboard_client::session::{self, Context, Session};
use switchboard_proto::messages::{ClientMessage, SupernodeMessage};
use switchboard_proto::relay::bind_datagram;
use tokio::net::UdpSocket;

use super::procfs::{cpu_of, idle_rate, machine};
use super::{profile_at, Devices};
use crate::network::{metric, Scenario, Spec, Started};
use crate::procs::Proc;

/// Datagrams one sender offers at most, whatever `--secs` says.
pub const MAX_DATAGRAMS: u64 = 20_000_000;

/// Options of `testbed relay`.
#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    /// Seconds each measurement offers traffic.
    #[arg(long, default_value_t = 5)]
    pub secs: u64,
    /// Bytes per datagram (a full-size QUIC packet is about 1,200).
    #[arg(long, default_value_t = 1_200)]
    pub size: usize,
    /// Relay sessions run at once in the second measurement at each supernode.
    #[arg(long, default_value_t = 8)]
    pub sessions: u32,
    /// Where the auth-server's key and database are kept (as for `testbed load`).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<std::path::PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `testbed relay`; see the module doc.
pub async fn run(args: RelayArgs) -> std::process::ExitCode {
    let mut run = match Scenario::new("switchboard-relay-", args.cache.clone()) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("testbed: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = tokio::select! {
        outcome = measure(&args, &run.cache, run.scratch.path(), &mut run.procs) => Some(outcome),
        () = crate::demo::interrupted() => None,
    };
    run.finish("relay", outcome, |report: serde_json::Value| {
        if args.json {
            println!("{report}");
        } else {
            let text = |v: &serde_json::Value, key: &str| {
                v.get(key).map_or_else(
                    || "?".to_owned(),
                    |x| x.as_str().map_or_else(|| x.to_string(), str::to_owned),
                )
            };
            let number = |v: &serde_json::Value, key: &str| {
                v.get(key)
                    .and_then(serde_json::Value::as_f64)
                    .unwrap_or(0.0)
            };
            println!("relay on {}", text(&report, "machine"));
            let rows = report.get("rows").and_then(serde_json::Value::as_array);
            for row in rows.into_iter().flatten() {
                println!(
                    "{:<12} {:>2} session(s): offered {:>8.1} MiB/s, forwarded {:>7.2} MiB/s, \
                     relay CPU {:>6.1} ms per MiB ({:.0}% of a core), dropped over cap {}, \
                     floods ended {}",
                    text(row, "supernode"),
                    text(row, "sessions"),
                    number(row, "offered_mib_s"),
                    number(row, "forwarded_mib_s"),
                    number(row, "cpu_ms_per_mib"),
                    number(row, "relay_cpu_share") * 100.0,
                    text(row, "dropped_over_cap"),
                    text(row, "floods_ended"),
                );
            }
        }
    })
    .await
}

async fn measure(
    args: &RelayArgs,
    cache: &Path,
    scratch: &Path,
    procs: &mut Vec<Proc>,
) -> anyhow::Result<serde_json::Value> {
    if args.size == 0 || args.size > 65_000 {
        bail!("--size must be 1..=65000");
    }
    let config = |name: &str, session: u32, total: u32| -> anyhow::Result<Vec<String>> {
        let path = scratch.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "relay_session_bytes_per_sec = {session}\nrelay_total_bytes_per_sec = {total}\n\
                 relay_max_sessions = 1024\n"
            ),
        )?;
        Ok(vec!["--config".to_owned(), path.display().to_string()])
    };
    let specs = [
        Spec {
            name: "relayfree".to_owned(),
            role: "supernode",
            extra: config("relayfree", u32::MAX, u32::MAX)?,
            capacity: 1_000,
        },
        Spec {
            name: "relaycapped".to_owned(),
            role: "supernode",
            extra: config("relaycapped", 1 << 20, 4 << 20)?,
            capacity: 1_000,
        },
    ];
    let network = crate::network::start(cache, scratch, 1, &specs, &[], procs).await?;
    let devices = Devices {
        auth: switchboard_net::keyfile::load(&cache.join("auth").join("auth.key"))?,
        trust: network.pubkey.parse()?,
        serial: switchboard_net::now_unix().0.saturating_mul(1_000_000),
    };
    let mut rows = Vec::new();
    let mut pair = 0u32;
    for sn in &network.supernodes {
        let pid = procs
            .get(sn.proc)
            .and_then(Proc::pid)
            .ok_or_else(|| anyhow!("no pid for {}", sn.name))?;
        let profile = profile_at(scratch, &sn.name, &network, sn)?;
        // (sessions, pace per session): as fast as possible at both; at the capped one also
        // a sender at 3x the session cap, and 8 senders at 1.5x it (12 MiB/s against the
        // 4 MiB/s total), which a congestion-controlled sender would never exceed.
        let plan: Vec<(u32, Option<u64>)> = if sn.name == "relayfree" {
            vec![(1, None), (args.sessions.max(1), None)]
        } else {
            vec![
                (1, Some(3 << 20)),
                (args.sessions.max(1), Some(3 << 19)),
                (1, None),
            ]
        };
        for (sessions, pace) in plan {
            let mut pairs = Vec::new();
            for _ in 0..sessions {
                pairs.push(Pair::open(&devices, pair, &profile, sn).await?);
                pair += 1;
            }
            let base = idle_rate(pid, Duration::from_secs(2)).await?;
            let counter = |name: &'static str| metric(sn.metrics, name);
            let dropped_before = counter("switchboard_supernode_relay_dropped_over_cap_total")
                .await
                .unwrap_or(0);
            let floods_before = counter("switchboard_supernode_relay_floods_ended_total")
                .await
                .unwrap_or(0);
            let cpu_before = cpu_of(pid)?;
            let started = Instant::now();
            let mut runs = tokio::task::JoinSet::new();
            for pair in pairs {
                runs.spawn(pair.run(args.size, Duration::from_secs(args.secs), pace));
            }
            let (mut offered, mut forwarded) = (0u64, 0u64);
            while let Some(done) = runs.join_next().await {
                let (o, f) = done??;
                offered += o;
                forwarded += f;
            }
            let elapsed = started.elapsed().as_secs_f64();
            let cpu = (cpu_of(pid)? - cpu_before).as_secs_f64() - base * elapsed;
            let dropped = counter("switchboard_supernode_relay_dropped_over_cap_total")
                .await
                .unwrap_or(0)
                .saturating_sub(dropped_before);
            let floods = counter("switchboard_supernode_relay_floods_ended_total")
                .await
                .unwrap_or(0)
                .saturating_sub(floods_before);
            let mib = |bytes: u64| bytes as f64 / f64::from(1u32 << 20);
            let forwarded_mib = mib(forwarded);
            let row = serde_json::json!({
                "supernode": sn.name,
                "sessions": sessions,
                "paced_mib_s": pace.map(|p| p as f64 / f64::from(1u32 << 20)),
                "floods_ended": floods,
                "secs": elapsed,
                "offered_mib_s": mib(offered) / elapsed,
                "forwarded_mib_s": forwarded_mib / elapsed,
                "cpu_ms_per_mib": if forwarded_mib > 0.0 { cpu.max(0.0) * 1_000.0 / forwarded_mib } else { 0.0 },
                "relay_cpu_share": cpu.max(0.0) / elapsed,
                "dropped_over_cap": dropped,
            });
            eprintln!("{row}");
            rows.push(row);
        }
    }
    Ok(serde_json::json!({
        "machine": machine(),
        "size": args.size,
        "rows": rows,
    }))
}

/// A caller and a callee with a relay between them at one supernode.
struct Pair {
    /// Kept open: the relay lasts as long as both sessions.
    _sessions: [Session; 2],
    caller: UdpSocket,
    callee: UdpSocket,
    relay: SocketAddr,
}

impl Pair {
    /// Opens the two sessions at `sn` and the relay between them.
    async fn open(
        devices: &Devices,
        i: u32,
        profile: &switchboard_client::profile::Profile,
        sn: &Started,
    ) -> anyhow::Result<Self> {
        let context = |set: &str| -> anyhow::Result<Context> {
            let (_, key, ticket) = devices.device(set, i)?;
            Ok(Context::from_parts(
                profile.clone(),
                key,
                ticket,
                devices.trust,
                None,
            )?)
        };
        let (callee_context, caller_context) = (context("relayee")?, context("relayer")?);
        let callee_session = session::open(&callee_context, None).await?;
        let mut caller_session = session::open(&caller_context, None).await?;
        let ip = sn.addr.ip();
        let callee = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let caller = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;

        // The callee answers its home's offer as a real client does: a bind from its socket.
        let (tx, mut pushes) = tokio::sync::mpsc::channel(8);
        tokio::spawn(read_pushes(
            callee_session.connection.connection.clone(),
            tx,
        ));
        let callee_node = callee_context.key.node_id();
        let request = ClientMessage::Relay { node: callee_node };
        let asked = caller_session.ask(&request);
        let offer = async {
            loop {
                match pushes.recv().await {
                    Some(SupernodeMessage::RelayOffer { port, token, .. }) => {
                        callee
                            .send_to(&bind_datagram(&token), SocketAddr::new(ip, port))
                            .await?;
                        return anyhow::Ok(());
                    }
                    Some(_) => {}
                    None => bail!("the callee's session ended before the offer"),
                }
            }
        };
        let (answer, offered) = tokio::join!(asked, offer);
        offered?;
        let SupernodeMessage::RelayOpened { port, token } = answer? else {
            bail!("the relay was refused");
        };
        let relay = SocketAddr::new(ip, port);
        caller.send_to(&bind_datagram(&token), relay).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(Self {
            _sessions: [callee_session, caller_session],
            caller,
            callee,
            relay,
        })
    }

    /// Offers `size`-byte datagrams for `secs`, at `pace` bytes per second or as fast as it
    /// can; returns (bytes offered, bytes received).
    async fn run(
        self,
        size: usize,
        secs: Duration,
        pace: Option<u64>,
    ) -> anyhow::Result<(u64, u64)> {
        let received = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let counter = {
            let (received, done) = (Arc::clone(&received), Arc::clone(&done));
            let callee = self.callee;
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 65_536];
                while !done.load(Ordering::Relaxed) {
                    if let Ok(Ok((n, _))) = tokio::time::timeout(
                        Duration::from_millis(200),
                        callee.recv_from(&mut buffer),
                    )
                    .await
                    {
                        received.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
            })
        };
        let datagram = vec![0u8; size];
        let until = Instant::now() + secs;
        let mut offered = 0u64;
        let mut sent = 0u64;
        let started = Instant::now();
        while Instant::now() < until && sent < MAX_DATAGRAMS {
            if let Some(pace) = pace {
                // Ahead of the pace: wait for it (1 ms ticks).
                let due = started.elapsed().as_secs_f64() * pace as f64;
                if offered as f64 >= due {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
            }
            if self.caller.send_to(&datagram, self.relay).await.is_ok() {
                offered += size as u64;
            }
            sent += 1;
            if sent % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        done.store(true, Ordering::Relaxed);
        let _ = counter.await;
        Ok((offered, received.load(Ordering::Relaxed)))
    }
}
