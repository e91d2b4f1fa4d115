//! The reconnect storm: new connections offered faster than the server serves them, against
//! the measured supernode and against plain quinn in the same run.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use switchboard_client::profile::Profile;
use switchboard_proto::messages::ClientMessage;
use switchboard_proto::{BoundedVec, Record, RecordBody};
use tokio::task::JoinSet;

use super::procfs::{cpu_of, idle_rate};
use super::{pick, CpuArgs, Devices, TTL_SECS};
use crate::network::{metric, Started};
use crate::procs::Proc;

/// Runs `attempt(j)` again and again in each of `in_flight` tasks (`j` is the task's index)
/// for `secs` seconds; returns the attempts that succeeded and failed, and the seconds taken
/// (the last attempts end after the deadline).
async fn hammer<F, A>(in_flight: u32, secs: u64, attempt: F) -> (u64, u64, f64)
where
    F: Fn(u32) -> A + Clone + Send + 'static,
    A: std::future::Future<Output = bool> + Send,
{
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let end = started + Duration::from_secs(secs);
    let mut running = JoinSet::new();
    for j in 0..in_flight {
        let (done, failed, attempt) = (Arc::clone(&done), Arc::clone(&failed), attempt.clone());
        running.spawn(async move {
            while Instant::now() < end {
                let counter = if attempt(j).await { &done } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while running.join_next().await.is_some() {}
    (
        done.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    )
}

/// The same storm against plain quinn ([`crate::rawquinn`]) in a process of its own: the
/// same handshakes and request sizes, nothing verified or stored.
pub(super) async fn raw_storm(
    args: &CpuArgs,
    devices: &Devices,
    endpoints: &[quinn::Endpoint],
    scratch: &Path,
    procs: &mut Vec<Proc>,
) -> anyhow::Result<serde_json::Value> {
    use switchboard_proto::codec::encode_frame;
    use switchboard_proto::version::{Hello, VersionRange};
    // The sizes of our requests: a Hello, and a Register with a real record.
    let hello = encode_frame(&ClientMessage::Hello(Hello {
        protocol: VersionRange::CURRENT,
        software: switchboard_account::login::software_version(),
    }))?
    .len();
    let (_, key, ticket) = devices.device("cpus", 0)?;
    let record = Record::sign(
        &key,
        RecordBody {
            ticket,
            endpoints: BoundedVec::truncating([std::net::SocketAddr::from((
                [127, 1, 0, 1],
                40_000,
            ))]),
            reflexive: None,
            home: None,
            seq: 1,
            issued_at: switchboard_net::now_unix(),
            ttl_secs: TTL_SECS,
        },
    )?;
    let register = encode_frame(&ClientMessage::Register {
        record: Box::new(record),
    })?
    .len();
    let mut proc = Proc::spawn(
        "raw-quinn",
        "raw-quinn",
        &[],
        &scratch.join("raw-quinn.log"),
    )?;
    let line = proc
        .expect("listening on ", Duration::from_secs(10))
        .await?;
    let server: std::net::SocketAddr = line.trim_start_matches("listening on ").trim().parse()?;
    let cert = proc
        .seen()
        .iter()
        .find_map(|l| l.strip_prefix("cert "))
        .map(crate::rawquinn::from_hex)
        .ok_or_else(|| anyhow!("raw-quinn printed no certificate"))??;
    let pid = proc.pid().ok_or_else(|| anyhow!("no pid for raw-quinn"))?;
    procs.push(proc);
    let config = crate::rawquinn::client_config(&cert)?;
    let base = idle_rate(pid, Duration::from_secs(2)).await?;
    let cpu_before = cpu_of(pid)?;
    let endpoints = endpoints.to_vec();
    let (done, failed, seconds) = hammer(args.storm_in_flight, args.storm_secs, move |j| {
        let endpoint = pick(&endpoints, j as usize / crate::network::CLIENTS_PER_ADDRESS);
        let config = config.clone();
        async move {
            let Ok(endpoint) = endpoint else { return false };
            let attempt = crate::rawquinn::attempt(&endpoint, config, server, hello, register);
            matches!(
                tokio::time::timeout(Duration::from_secs(5), attempt).await,
                Ok(Ok(()))
            )
        }
    })
    .await;
    let cpu = (cpu_of(pid)? - cpu_before).as_secs_f64() - base * seconds;
    let per = cpu.max(0.0) * 1e6 / done.max(1) as f64;
    eprintln!(
        "storm against raw quinn: {done} exchanges on new connections in {seconds:.1} s ({:.0}/s), {failed} failed; {per:.0} µs of server CPU each",
        done as f64 / seconds
    );
    Ok(serde_json::json!({
        "request_bytes": [hello, register],
        "seconds": seconds,
        "registrations": done,
        "per_sec": done as f64 / seconds.max(1e-9),
        "failed_attempts": failed,
        "server_cpu_share": cpu / seconds.max(1e-9),
        "server_cpu_us_per_registration": per,
    }))
}

/// A reconnect storm: `storm_in_flight` devices each opening a new connection, registering and
/// dropping it, again and again for `storm_secs`.
pub(super) async fn storm(
    args: &CpuArgs,
    devices: &Devices,
    profile: &Profile,
    endpoints: &[quinn::Endpoint],
    pid: u32,
    sn: &Started,
) -> anyhow::Result<serde_json::Value> {
    // The idle clients' connections close; let the supernode see it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let base = idle_rate(pid, Duration::from_secs(3)).await?;
    let refused_before = metric(sn.metrics, "switchboard_supernode_handshakes_refused_total")
        .await
        .unwrap_or(0);
    let devices = Arc::new(Devices {
        auth: devices.auth.clone(),
        trust: devices.trust,
        serial: devices.serial + 20_000_000,
    });
    let cpu_before = cpu_of(pid)?;
    let (endpoints, profile) = (endpoints.to_vec(), profile.clone());
    let (done, failed, seconds) = hammer(args.storm_in_flight, args.storm_secs, move |j| {
        let endpoint = pick(&endpoints, j as usize / crate::network::CLIENTS_PER_ADDRESS);
        let (devices, profile) = (Arc::clone(&devices), profile.clone());
        async move {
            let Ok(endpoint) = endpoint else { return false };
            match devices.open("cpus", j, &profile, endpoint).await {
                Ok((_, _, session)) => {
                    session.connection.connection.close(0u32.into(), b"again");
                    true
                }
                Err(_) => false,
            }
        }
    })
    .await;
    let cpu = (cpu_of(pid)? - cpu_before).as_secs_f64() - base * seconds;
    let refused = metric(sn.metrics, "switchboard_supernode_handshakes_refused_total")
        .await
        .unwrap_or(0)
        .saturating_sub(refused_before);
    let per_registration = cpu.max(0.0) * 1e6 / done.max(1) as f64;
    eprintln!(
        "storm: {done} registrations on new connections in {seconds:.1} s ({:.0}/s), {failed} attempts failed, {refused} handshakes refused; {per_registration:.0} µs of supernode CPU per registration",
        done as f64 / seconds
    );
    Ok(serde_json::json!({
        "in_flight": args.storm_in_flight,
        "seconds": seconds,
        "registrations": done,
        "per_sec": done as f64 / seconds.max(1e-9),
        "failed_attempts": failed,
        "handshakes_refused": refused,
        "supernode_cpu_share": cpu / seconds.max(1e-9),
        "supernode_cpu_us_per_registration": per_registration,
    }))
}
