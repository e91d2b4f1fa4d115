//! The command-line contract of DESIGN.md section 8, checked on the real binaries: every
//! command is there with its documented options, and commands not built yet say so and exit 2
//! instead of pretending.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use switchboard_tests::Binary;

fn help(binary: Binary, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.push("--help");
    let output = binary.run(&all).unwrap();
    assert!(
        output.status.success(),
        "{} {all:?} --help failed",
        binary.name()
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn every_binary_lists_its_contract_commands_in_help() {
    let expected: [(Binary, &[&str]); 3] = [
        (Binary::AuthServer, &["init", "serve", "user", "pubkey"]),
        (Binary::Supernode, &["serve"]),
        (
            Binary::Client,
            &["login", "online", "lookup", "send", "watch"],
        ),
    ];
    for (binary, commands) in expected {
        let text = help(binary, &[]);
        for command in commands {
            assert!(
                text.lines().any(|l| l.trim_start().starts_with(command)),
                "{} --help does not list {command}:\n{text}",
                binary.name()
            );
        }
        assert!(
            text.contains("--config"),
            "{} lacks --config",
            binary.name()
        );
        assert!(text.contains("--json"), "{} lacks --json", binary.name());
    }
}

#[test]
fn the_documented_options_exist() {
    let cases: [(Binary, &[&str], &[&str]); 6] = [
        (
            Binary::AuthServer,
            &["serve"],
            &["--data-dir", "--listen", "--metrics"],
        ),
        (
            Binary::AuthServer,
            &["user", "add"],
            &["--role", "--data-dir"],
        ),
        (
            Binary::Supernode,
            &["serve"],
            &[
                "--data-dir",
                "--listen",
                "--auth",
                "--trust",
                "--user",
                "--password-file",
                "--mega",
                "--standby",
                "--seed",
                "--capacity",
                "--metrics",
            ],
        ),
        (
            Binary::Client,
            &["login"],
            &["--profile", "--auth", "--trust", "--user"],
        ),
        (
            Binary::Client,
            &["online"],
            &["--profile", "--listen", "--promotable"],
        ),
        (Binary::Client, &["lookup"], &["--profile", "--json"]),
    ];
    for (binary, command, options) in cases {
        let text = help(binary, command);
        for option in options {
            assert!(
                text.contains(option),
                "{} {command:?} lacks {option}:\n{text}",
                binary.name()
            );
        }
    }
}

#[test]
fn no_command_takes_a_password_on_the_command_line() {
    for (binary, command) in [
        (Binary::Client, &["login"][..]),
        (Binary::Client, &["signup"][..]),
        (Binary::AuthServer, &["user", "add"][..]),
        (Binary::AuthServer, &["user", "passwd"][..]),
    ] {
        let text = help(binary, command);
        assert!(
            !text.contains("--password "),
            "{} {command:?} takes a password in argv",
            binary.name()
        );
    }
}

#[test]
fn a_command_without_a_profile_says_to_log_in_and_exits_1() {
    let output = Binary::Client
        .run(&["lookup", "alice", "--profile", "/nonexistent/profile"])
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("run `client login` first"), "{stderr}");
    assert!(output.stdout.is_empty(), "it must not print a result");
}

#[test]
fn a_bad_config_file_exits_2_naming_the_file_and_the_key() {
    let dir = switchboard_tests::temp_dir();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "data_dir = \"/x\"\nlisten_at = \"oops\"\n").unwrap();
    let output = Binary::AuthServer
        .run(&["--config", path.to_str().unwrap(), "serve"])
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("bad.toml"), "{stderr}");
    assert!(stderr.contains("listen_at"), "{stderr}");
    let output = Binary::Supernode
        .run(&["--config", path.to_str().unwrap(), "serve"])
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr)
        .unwrap()
        .contains("listen_at"));
}

#[test]
fn bad_usage_exits_2_with_a_message() {
    let output = Binary::AuthServer
        .run(&["user", "add", "bob", "--role", "root", "--data-dir", "/x"])
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("unknown role"), "{stderr}");
}
