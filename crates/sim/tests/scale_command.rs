//! `switchboard-sim scale` checks what it prints (issue #15, point 4): it exits non-zero when
//! a headline target is missed, and a `SIM_SEED` left in the environment (by a sweep) does not
//! change its run unless `--seed` says so. A small network (20 supernodes, 400 clients, 6
//! crashed) keeps each run under a second.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::process::{Command, Output};

const SMALL: [&str; 11] = [
    "scale",
    "--supernodes",
    "20",
    "--clients",
    "400",
    "--arrival-secs",
    "5",
    "--crash-at-secs",
    "20",
    "--after-secs",
    "25",
];

fn scale(extra: &[&str], seed_env: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard-sim"));
    command.args(SMALL).args(extra);
    command.env_remove("SIM_SEED");
    if let Some(seed) = seed_env {
        command.env("SIM_SEED", seed);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_run_that_meets_its_targets_exits_zero_and_a_stray_sim_seed_is_ignored() {
    let out = scale(&[], Some("7"));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(", seed 1\n"),
        "SIM_SEED=7 was read: {stdout}"
    );
    assert!(stdout.contains("every target met"), "{stdout}");

    let out = scale(&["--seed", "7"], Some("3"));
    assert!(out.status.success());
    assert!(text(&out.stdout).contains(", seed 7\n"));
}

#[test]
fn a_missed_target_makes_the_run_fail_and_says_which_with_its_figure() {
    let out = scale(&["--target-rehome-secs", "0.5"], None);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(
        stderr.contains("targets missed: 99% of clients re-homed: after"),
        "{stderr}"
    );
    assert!(stderr.contains("(target 500ms)"), "{stderr}");

    let out = scale(&["--target-messages-per-sec", "10"], None);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("messages per supernode per second, steady state:"),
        "{stderr}"
    );
}

#[test]
fn a_cold_start_where_every_supernode_joins_through_the_first_meets_the_targets_too() {
    let out = scale(&["--cold-start"], None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("every target met"), "{stdout}");
}
