//! The `testbed` binary starts and explains itself. (Having an integration test also makes
//! `cargo test --workspace` build the executable, which the end-to-end tests in `tests/` run.)

#![allow(clippy::unwrap_used)]

#[test]
fn help_names_the_demo() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_testbed"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8(output.stdout).unwrap().contains("demo"));
}
