//! The README's command that runs the system (`deploy/demo.sh`) works, on the debug binaries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use switchboard_tests::Binary;

#[test]
fn the_demo_script_runs_a_network_survives_a_supernode_kill_and_exits_cleanly() {
    let bin_dir = Binary::AuthServer
        .path()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    Binary::Client.path().unwrap();
    Binary::Supernode.path().unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo.sh");
    let output = std::process::Command::new("bash")
        .arg(script)
        .env("SWITCHBOARD_BIN_DIR", bin_dir)
        .env("DEMO_ONCE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("logged in as alice"), "{stdout}");
    assert!(stderr.contains("wrong username or password"), "{stderr}");
    assert!(
        stdout.contains("switchboard_auth_logins_ok_total 5"),
        "{stdout}"
    );
    assert!(stdout.contains("delivered to alice"), "{stdout}");
    assert!(
        stdout.contains("alice printed: from bob: hello from bob"),
        "{stdout}"
    );
    assert!(
        stdout.contains("overlay members seen by sn3: 3"),
        "{stdout}"
    );
    assert!(stdout.contains("killed sn"), "{stdout}");
    let after = stdout
        .split("after the outage")
        .nth(1)
        .expect("the demo looks alice up after the outage");
    assert!(
        after
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("alice ")),
        "{stdout}"
    );
    assert!(stdout.contains("demo done"), "{stdout}");
}
