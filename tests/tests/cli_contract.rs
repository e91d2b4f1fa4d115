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
        (
            Binary::AuthServer,
            &["init", "serve", "user", "revoke", "pubkey"],
        ),
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

/// Writes `text` to `name` in `dir` and returns the path as a string.
fn write_file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Runs `binary` with `args`, asserts exit code `code`, and returns stderr.
fn stderr_of(binary: Binary, args: &[&str], code: i32) -> String {
    let output = binary.run(args).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        output.status.code(),
        Some(code),
        "{} {args:?}: {stderr}",
        binary.name()
    );
    stderr
}

/// Every client command loads `--config` first: a bad file stops it before anything else,
/// whatever the command.
const CLIENT_COMMANDS: [&[&str]; 4] = [
    &["lookup", "alice"],
    &["login"],
    &["online"],
    &["watch", "bob"],
];

#[test]
fn the_client_exits_2_on_an_unknown_config_key_naming_the_file_and_the_key() {
    let dir = switchboard_tests::temp_dir();
    let path = write_file(&dir, "bad-client.toml", "profil = \"/x\"\n");
    for command in CLIENT_COMMANDS {
        let mut args = command.to_vec();
        args.extend(["--config", &path]);
        let stderr = stderr_of(Binary::Client, &args, 2);
        assert!(stderr.contains("bad-client.toml"), "{command:?}: {stderr}");
        assert!(stderr.contains("profil"), "{command:?}: {stderr}");
    }
}

#[test]
fn the_client_exits_2_on_unparsable_toml_naming_the_file_and_the_line() {
    let dir = switchboard_tests::temp_dir();
    let path = write_file(&dir, "broken-client.toml", "user = \"alice\"\nprofile = \n");
    for command in CLIENT_COMMANDS {
        let mut args = command.to_vec();
        args.extend(["--config", &path]);
        let stderr = stderr_of(Binary::Client, &args, 2);
        assert!(
            stderr.contains("broken-client.toml"),
            "{command:?}: {stderr}"
        );
        assert!(stderr.contains("line 2"), "{command:?}: {stderr}");
        assert!(stderr.contains("profile"), "{command:?}: {stderr}");
    }
}

#[test]
fn the_daemons_exit_2_on_unparsable_toml_naming_the_file_and_the_line() {
    let dir = switchboard_tests::temp_dir();
    let path = write_file(&dir, "broken.toml", "data_dir = \"/x\"\nlisten = [\n");
    for binary in [Binary::AuthServer, Binary::Supernode] {
        let stderr = stderr_of(binary, &["--config", &path, "serve"], 2);
        assert!(
            stderr.contains("broken.toml"),
            "{}: {stderr}",
            binary.name()
        );
        assert!(stderr.contains("line 2"), "{}: {stderr}", binary.name());
    }
}

#[test]
fn the_auth_server_exits_2_on_an_unknown_key_in_a_table_naming_it() {
    let dir = switchboard_tests::temp_dir();
    for table in ["throttle", "argon2"] {
        let path = write_file(
            &dir,
            &format!("bad-{table}.toml"),
            &format!("data_dir = \"/x\"\n[{table}]\nbogus = 1\n"),
        );
        let stderr = stderr_of(Binary::AuthServer, &["--config", &path, "serve"], 2);
        assert!(stderr.contains(&format!("bad-{table}.toml")), "{stderr}");
        assert!(stderr.contains("bogus"), "{stderr}");
    }
}

/// A supernode configuration that passes validation but for `extra`, with a password file
/// that does not exist: a supernode that gets past validation exits 1 on it, not 2.
fn supernode_config(dir: &tempfile::TempDir, name: &str, extra: &str) -> String {
    let data = dir.path().join("data");
    let missing = dir.path().join("no-such-password");
    write_file(
        dir,
        name,
        &format!(
            "data_dir = {data:?}\nauth = \"127.0.0.1:9\"\n\
             trust = \"3da0e2d75f5bcab5f53054e36e67f4a4d5e000607b8f23990bf70d3d7c26ad64\"\n\
             user = \"sn1\"\npassword_file = {missing:?}\n{extra}"
        ),
    )
}

#[test]
fn a_zero_count_or_period_exits_2_naming_the_file_and_the_key() {
    let dir = switchboard_tests::temp_dir();
    // The control: the same file without the zero gets past validation (and fails on the
    // missing password file).
    let fine = supernode_config(&dir, "fine.toml", "");
    let stderr = stderr_of(Binary::Supernode, &["--config", &fine, "serve"], 1);
    assert!(stderr.contains("no-such-password"), "{stderr}");
    for key in ["capacity", "revocation_poll_secs", "announce_interval_secs"] {
        let path = supernode_config(&dir, &format!("zero-{key}.toml"), &format!("{key} = 0\n"));
        let stderr = stderr_of(Binary::Supernode, &["--config", &path, "serve"], 2);
        assert!(stderr.contains(&format!("zero-{key}.toml")), "{stderr}");
        assert!(stderr.contains(&format!("`{key}`")), "{stderr}");
        assert!(stderr.contains("at least 1"), "{stderr}");
    }
    let path = write_file(
        &dir,
        "zero-ttl.toml",
        "data_dir = \"/x\"\nannounce_ttl_secs = 0\n",
    );
    let stderr = stderr_of(Binary::AuthServer, &["--config", &path, "serve"], 2);
    assert!(stderr.contains("zero-ttl.toml"), "{stderr}");
    assert!(stderr.contains("`announce_ttl_secs`"), "{stderr}");
}

#[test]
fn a_value_below_its_production_minimum_starts_with_a_warning_naming_the_key() {
    let dir = switchboard_tests::temp_dir();
    // Past validation, the supernode fails on the missing password file: the warning must
    // already be on stderr by then.
    let path = supernode_config(&dir, "fast.toml", "revocation_poll_secs = 1\n");
    let stderr = stderr_of(Binary::Supernode, &["--config", &path, "serve"], 1);
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(stderr.contains("`revocation_poll_secs` = 1"), "{stderr}");
    // The auth-server fails on the missing signing key in the same place.
    let missing = dir.path().join("no-such-dir");
    let path = write_file(
        &dir,
        "fast-auth.toml",
        &format!("data_dir = {missing:?}\nannounce_ttl_secs = 2\n"),
    );
    let stderr = stderr_of(Binary::AuthServer, &["--config", &path, "serve"], 1);
    assert!(stderr.contains("`announce_ttl_secs` = 2"), "{stderr}");
    // The defaults warn of nothing.
    let path = supernode_config(&dir, "default.toml", "");
    let stderr = stderr_of(Binary::Supernode, &["--config", &path, "serve"], 1);
    assert!(!stderr.contains("production minimum"), "{stderr}");
}
