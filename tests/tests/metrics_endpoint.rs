//! The metrics endpoint when the process runs out of file descriptors (issue #10, point 7):
//! a failing `accept` pauses the loop instead of spinning a core, and scrapes are answered
//! again once descriptors free up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{metric, Network};

/// Open descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// CPU time (user + system) of a process, from `/proc/PID/stat` (ticks of 10 ms).
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn limit_fds(pid: u32, limit: usize) {
    let status = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={limit}:")])
        .status()
        .expect("prlimit (util-linux) is needed to limit a process's descriptors");
    assert!(status.success());
}

#[test]
fn out_of_descriptors_the_metrics_endpoint_pauses_instead_of_spinning_and_recovers() {
    let network = Network::new(&[], &["sn1"]);
    let sn1 = network.supernode("sn1", &[]);
    let addr = sn1.metrics_addr().unwrap();
    let pid = sn1.pid();
    assert!(metric(&sn1, "switchboard_supernode_clients_connected").is_some());

    // Three descriptors to spare: the fourth idle scraper finds `accept` failing (EMFILE), and
    // the pending connection keeps it failing until one is freed.
    let spare = 3;
    limit_fds(pid, open_fds(pid) + spare);
    let idlers: Vec<TcpStream> = (0..spare + 3)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu(pid);
    let measured = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let spent = cpu(pid) - before;
    println!(
        "supernode CPU while accept fails: {spent:?} in {:?}",
        measured.elapsed()
    );
    // A spinning accept loop burns a whole core (2 s here); paused, it wakes 10 times a second.
    assert!(
        spent < Duration::from_millis(500),
        "{spent:?} of CPU in 2 s"
    );

    // Descriptors free up: scrapes are answered again.
    drop(idlers);
    limit_fds(pid, 1024);
    assert!(
        common::wait_until(Duration::from_secs(10), || metric(
            &sn1,
            "switchboard_supernode_clients_connected"
        )
        .is_some()),
        "no scrape answered after the descriptors came back"
    );
}
