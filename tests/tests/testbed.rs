//! The README's first command, `testbed demo` (issue #12, point 1): a whole network of real
//! processes on loopback, 2 supernodes SIGKILLed and the network recovering, in under 60 s;
//! it leaves no process and no temporary directory behind, also when interrupted halfway.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use switchboard_tests::Binary;

/// Processes whose command line names `dir` (the demo's workspace): its own processes.
fn processes_under(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(&needle))
        .collect()
}

/// Every line still to come from a process that exited: until its stdout reader ends (the
/// child's exit does not mean the reader thread has passed its last lines on yet).
fn remaining(lines: &std::sync::mpsc::Receiver<String>) -> Vec<String> {
    let mut rest = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) {
        rest.push(line);
    }
    rest
}

/// Runs `testbed demo` in a temporary parent directory of the test's; returns the child, the
/// lines it prints (through a channel) and its workspace once announced.
fn start(
    parent: &Path,
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<String>,
    PathBuf,
) {
    let mut child = Binary::Testbed
        .command(&["demo", "--tmp", parent.to_str().unwrap()])
        .unwrap()
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("  | {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let workspace = first
        .strip_prefix("workspace: ")
        .and_then(|rest| rest.split(" (").next())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("the first line names the workspace: {first:?}"));
    (child, rx, workspace)
}

#[test]
fn the_demo_runs_a_network_through_an_outage_and_leaves_nothing_behind() {
    let parent = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (mut child, lines, workspace) = start(parent.path());
    assert!(workspace.exists());
    let status = switchboard_tests::wait_child(&mut child, Duration::from_secs(90))
        .expect("the demo ends by itself");
    let took = started.elapsed();
    let out = remaining(&lines);
    println!("the demo took {took:?}");
    assert!(status.success(), "{out:?}");
    let text = out.join("\n");
    for expected in [
        "overlay formed",
        "6 clients logged in and online",
        "lookups: 6 of 6 found their peer",
        "bob printed it",
        "the standby mega stepped in by itself",
        "lookups: 6 of 6 found again",
        "processes that exited on their own: 0",
        "demo succeeded",
        "workspace removed",
    ] {
        assert!(text.contains(expected), "no {expected:?} in {text}");
    }
    assert!(took < Duration::from_secs(60), "the demo took {took:?}");
    assert!(
        !workspace.exists(),
        "{} is left behind",
        workspace.display()
    );
    assert_eq!(processes_under(&workspace), Vec::<String>::new());
}

#[test]
fn an_interrupted_demo_stops_every_process_and_removes_its_workspace() {
    let parent = tempfile::tempdir().unwrap();
    let (mut child, lines, workspace) = start(parent.path());
    // Halfway: the network is up and the clients are starting.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the overlay forms");
        if line.contains("overlay formed") {
            break;
        }
    }
    assert!(!processes_under(&workspace).is_empty(), "the network runs");
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let status = switchboard_tests::wait_child(&mut child, Duration::from_secs(30))
        .expect("the demo stops on SIGINT");
    assert_eq!(status.code(), Some(130));
    let text = remaining(&lines);
    assert!(text.iter().any(|l| l.contains("interrupted")), "{text:?}");
    assert!(
        !workspace.exists(),
        "{} is left behind",
        workspace.display()
    );
    assert_eq!(processes_under(&workspace), Vec::<String>::new());
}

#[test]
fn the_load_generator_registers_its_logical_clients_sends_messages_and_reports_percentiles() {
    let cache = tempfile::tempdir().unwrap();
    let run = || {
        let output = Binary::Testbed
            .command(&[
                "load",
                "--clients",
                "60",
                "--duration",
                "2",
                "--rate",
                "100",
                "--cache",
                cache.path().to_str().unwrap(),
                "--json",
            ])
            .unwrap()
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        (report, stderr)
    };
    let (first, stderr) = run();
    println!("{first}\n{stderr}");
    assert_eq!(first["connected"], 60);
    assert_eq!(first["errors"], 0, "{}", first["first_errors"]);
    assert_eq!(first["operations"]["register"]["count"], 60);
    assert!(first["operations"]["lookup"]["count"].as_u64().unwrap() > 50);
    assert!(first["operations"]["lookup"]["p99_ms"].as_f64().unwrap() > 0.0);
    // Direct messages (5% of 200 operations): each delivered end to end, counted by its
    // receiver as well as by its sender.
    let messages = first["operations"]["message"]["count"].as_u64().unwrap();
    assert!(messages > 0, "some of the 200 operations are messages");
    assert_eq!(first["messages_received"].as_u64().unwrap(), messages);
    assert!(stderr.contains("(60 logged in"), "{stderr}");
    // A second run reuses the cached tickets: no login at all.
    let (second, stderr) = run();
    assert_eq!(second["connected"], 60);
    assert!(stderr.contains("(0 logged in"), "{stderr}");
}

#[test]
fn a_scaled_down_outage_meets_the_four_headline_properties() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let output = Binary::Testbed
        .command(&[
            "outage",
            "--supernodes",
            "5",
            "--clients",
            "300",
            "--steady",
            "5",
            "--after",
            "20",
            "--cache",
            cache.path().to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ])
        .unwrap()
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let headline = &report["headline"];
    let rehomed = headline["rehomed_99_secs"]
        .as_f64()
        .expect("99% re-registered");
    let lookups = headline["lookups_999_secs"]
        .as_f64()
        .expect("lookups back above 99.9%");
    assert!(rehomed <= 10.0, "99% re-registered after {rehomed} s");
    assert!(lookups <= 15.0, "lookups back after {lookups} s");
    assert!(headline["peak_survivor_load"].as_f64().unwrap() <= 1.0);
    assert_eq!(headline["exited_on_their_own"], 0);
    // The run really had an outage in it: a supernode died and clients moved.
    let samples = report["samples"].as_array().unwrap();
    assert!(samples.iter().any(|s| s["loads"]
        .as_array()
        .unwrap()
        .iter()
        .any(serde_json::Value::is_null)));
    assert!(samples
        .iter()
        .any(|s| s["registered"].as_u64().unwrap() < 300));
    let svg = std::fs::read_to_string(out.path().join("plot.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("lookup success"));
}

#[test]
fn the_cpu_mode_measures_lookups_registrations_idle_clients_and_a_storm_next_to_raw_quinn() {
    let cache = tempfile::tempdir().unwrap();
    let output = Binary::Testbed
        .command(&[
            "cpu",
            "--records",
            "200,500",
            "--ops",
            "3200",
            "--idle",
            "100",
            "--idle-secs",
            "2",
            "--storm-secs",
            "1",
            "--storm-in-flight",
            "32",
            "--cache",
            cache.path().to_str().unwrap(),
            "--json",
        ])
        .unwrap()
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stderr}");
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    println!("{report:#}");
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    for (step, target) in steps.iter().zip([200, 500]) {
        // The fill's records, plus the 32 measuring devices' own, held by the measured one.
        let stored = step["records_stored"].as_u64().unwrap();
        assert!(
            stored >= target + 32,
            "{stored} records for a step of {target}"
        );
        for kind in ["lookup", "register_on_session"] {
            assert_eq!(step[kind]["ops"], 3200, "{kind}");
            assert_eq!(step[kind]["missed"], 0, "every {kind} answered and found");
        }
        // A registration verifies a ticket and a record; a lookup verifies nothing.
        assert!(
            step["register_on_session"]["supernode_cpu_us_per_op"]
                .as_f64()
                .unwrap()
                > 0.0
        );
    }
    assert_eq!(report["idle"]["clients"], 100);
    let storm = &report["storm"];
    assert!(storm["supernode"]["registrations"].as_u64().unwrap() > 0);
    assert!(storm["raw_quinn"]["registrations"].as_u64().unwrap() > 0);
    assert!(storm["cpu_ratio_raw_over_ours"].as_f64().unwrap() > 0.0);
}
