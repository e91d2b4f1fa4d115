//! A deployment's set-up without a shell or a terminal (issue #13: a compose file's init
//! service, containers built `FROM scratch`): `auth-server user import FILE` initialises the
//! data directory and creates the listed accounts, again and again without harm; the public
//! key lands in `auth.pub`, which supernodes and clients read with `--trust @FILE`; `client
//! login --password-file` logs in without stdin.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Duration;

use switchboard_tests::Binary;

#[test]
fn an_import_initialises_creates_accounts_once_and_nodes_log_in_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("auth");
    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("alice.password"), "alice-password\n").unwrap();
    std::fs::write(secrets.join("sn1.password"), "sn1-password\n").unwrap();
    let accounts = dir.path().join("accounts.toml");
    std::fs::write(
        &accounts,
        "[[account]]\nname = \"alice\"\npassword_file = \"secrets/alice.password\"\n\n\
         [[account]]\nname = \"sn1\"\nrole = \"supernode\"\npassword_file = \"secrets/sn1.password\"\n",
    )
    .unwrap();
    let public = dir.path().join("public-auth.pub");
    let import = || {
        let out = Binary::AuthServer
            .run(&[
                "user",
                "import",
                accounts.to_str().unwrap(),
                "--data-dir",
                data.to_str().unwrap(),
                "--write-pubkey",
                public.to_str().unwrap(),
                "--json",
            ])
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = import();
    assert_eq!(first["added"], serde_json::json!(["alice", "sn1"]));
    let second = import();
    assert_eq!(second["added"], serde_json::json!([]));
    assert_eq!(second["kept"], serde_json::json!(["alice", "sn1"]));

    // auth.pub holds what `pubkey` prints.
    let pubkey = Binary::AuthServer
        .run(&["pubkey", "--data-dir", data.to_str().unwrap()])
        .unwrap();
    let pubkey = String::from_utf8(pubkey.stdout).unwrap();
    let file = std::fs::read_to_string(data.join("auth.pub")).unwrap();
    assert_eq!(file.trim(), pubkey.trim());
    assert_eq!(std::fs::read_to_string(&public).unwrap(), file);

    // A supernode and a client start from files alone.
    let auth = Binary::AuthServer
        .spawn_daemon(
            &[
                "serve",
                "--data-dir",
                data.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ],
            Duration::from_secs(30),
        )
        .unwrap();
    let trust = format!("@{}", data.join("auth.pub").display());
    let sn_dir = dir.path().join("sn1");
    let sn = Binary::Supernode
        .spawn_daemon(
            &[
                "serve",
                "--data-dir",
                sn_dir.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--auth",
                &auth.addr().to_string(),
                "--trust",
                &trust,
                "--user",
                "sn1",
                "--password-file",
                secrets.join("sn1.password").to_str().unwrap(),
                "--metrics",
                "127.0.0.1:0",
            ],
            Duration::from_secs(30),
        )
        .unwrap();
    // Its health check, as a container runs it, passes; against nothing it fails.
    let metrics = sn.metrics_addr().unwrap().to_string();
    let healthy = Binary::Supernode.run(&["healthcheck", &metrics]).unwrap();
    assert!(healthy.status.success());
    drop(sn);
    let unhealthy = Binary::Supernode.run(&["healthcheck", &metrics]).unwrap();
    assert_eq!(unhealthy.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unhealthy.stderr).contains("unhealthy"));
    let profile = dir.path().join("alice");
    let out = Binary::Client
        .command(&[
            "login",
            "--profile",
            profile.to_str().unwrap(),
            "--auth",
            &auth.addr().to_string(),
            "--trust",
            &trust,
            "--user",
            "alice",
            "--password-file",
            secrets.join("alice.password").to_str().unwrap(),
        ])
        .unwrap()
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(auth);
}
