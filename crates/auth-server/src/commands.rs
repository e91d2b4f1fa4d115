//! The commands of the `auth-server` binary. Each prints its result on stdout (text, or JSON
//! with `--json`) and its errors on stderr, and returns the exit code: 0 done, 1 failed, 2 bad
//! usage or configuration.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use switchboard_net::keyfile;
use switchboard_proto::{Role, Username};

use crate::config::{ConfigError, FileConfig};
use crate::password::Hasher;
use crate::serve::Server;
use crate::store::Store;
use crate::{Cli, Command, UserCommand, EXIT_FAILED, EXIT_USAGE, KEY_FILE};

/// A command's failure: what to print, and which exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    pub(crate) fn usage(message: impl std::fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            code: EXIT_USAGE,
        }
    }

    pub(crate) fn failed(message: impl std::fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            code: EXIT_FAILED,
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Self::usage(e)
    }
}

/// Runs `cli`.
pub fn run(cli: Cli) -> ExitCode {
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("auth-server: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn dispatch(cli: Cli) -> Result<(), Failure> {
    let json = cli.json;
    match cli.command {
        Command::Init { data_dir } => init(&data_dir, json),
        Command::Healthcheck { metrics } => switchboard_net::metrics::probe(metrics)
            .map_err(|e| Failure::failed(format!("unhealthy: {e}"))),
        Command::Pubkey { data_dir } => {
            let key = keyfile::load(&data_dir.join(KEY_FILE)).map_err(Failure::failed)?;
            print_key(&key.auth_key().to_string(), json);
            Ok(())
        }
        Command::Serve {
            data_dir,
            listen,
            metrics,
        } => {
            let (mut file, source) = match &cli.config {
                Some(path) => (FileConfig::load(path)?, path.display().to_string()),
                None => (FileConfig::default(), "command line".to_owned()),
            };
            file.data_dir = data_dir.or(file.data_dir);
            file.listen = listen.or(file.listen);
            file.metrics = metrics.or(file.metrics);
            let config = file.validate(&source)?;
            // Accepted (the tests run with them), but said once, before anything binds.
            for warning in &config.warnings {
                tracing::warn!(key = warning.key, "{warning}");
            }
            serve(config)
        }
        Command::User { action } => user(action, json),
        Command::Revoke {
            node,
            serial,
            data_dir,
        } => {
            let store = open_store(&data_dir)?;
            let now = switchboard_net::now_unix();
            let what = match (node, serial) {
                (Some(node), _) => {
                    store.revoke_node(&node, now).map_err(Failure::failed)?;
                    format!("node {node}")
                }
                (None, Some(serial)) => {
                    store.revoke_serial(serial, now).map_err(Failure::failed)?;
                    format!("serial {serial}")
                }
                (None, None) => {
                    return Err(Failure::usage("say what to revoke: --node or --serial"))
                }
            };
            if json {
                println!("{}", serde_json::json!({ "revoked": what, "ok": true }));
            } else {
                println!("revoked {what}");
            }
            Ok(())
        }
    }
}

fn print_key(key: &str, json: bool) {
    if json {
        println!("{{\"pubkey\":\"{key}\"}}");
    } else {
        println!("{key}");
    }
}

fn init(data_dir: &Path, json: bool) -> Result<(), Failure> {
    let key = initialise(data_dir)?;
    print_key(&key.to_string(), json);
    Ok(())
}

/// Creates the data directory, the signing key, the database and the public key file;
/// returns the public key.
pub(crate) fn initialise(data_dir: &Path) -> Result<switchboard_proto::AuthKey, Failure> {
    create_private_dir(data_dir)?;
    let key = keyfile::create(&data_dir.join(KEY_FILE)).map_err(Failure::failed)?;
    Store::open(data_dir).map_err(Failure::failed)?;
    let public = key.auth_key();
    let path = data_dir.join(crate::PUBKEY_FILE);
    std::fs::write(&path, format!("{public}\n"))
        .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
    Ok(public)
}

fn create_private_dir(dir: &Path) -> Result<(), Failure> {
    switchboard_net::keyfile::private_dir(dir)
        .map_err(|e| Failure::failed(format!("{}: {e}", dir.display())))
}

fn serve(config: crate::config::Config) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("tokio runtime: {e}")))?;
    runtime.block_on(async {
        let server = Server::bind(config).await.map_err(Failure::failed)?;
        let addr = server.local_addr().map_err(Failure::failed)?;
        if let Some(metrics) = server.metrics_addr() {
            // Printed before the readiness line, so that whoever waits for readiness has it.
            println!("metrics on {metrics}");
        }
        // The stable readiness line that scripts and tests wait for.
        println!("listening on {addr}");
        let _ = std::io::stdout().flush();
        server.run(switchboard_net::shutdown::signal()).await;
        Ok(())
    })
}

/// Reads a password: the first line of `file`, or of stdin. Never from argv.
pub(crate) fn read_password(file: Option<&PathBuf>) -> Result<String, Failure> {
    let mut line = String::new();
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
            line = text.lines().next().unwrap_or_default().to_owned();
        }
        None => {
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Failure::failed(format!("reading the password from stdin: {e}")))?;
        }
    }
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(Failure::usage(
            "no password given (write it on stdin or pass --password-file)",
        ));
    }
    if password.len() > switchboard_proto::limits::MAX_PASSWORD_LEN {
        return Err(Failure::usage(format!(
            "the password is longer than {} bytes",
            switchboard_proto::limits::MAX_PASSWORD_LEN
        )));
    }
    Ok(password)
}

pub(crate) fn username(name: &str) -> Result<Username, Failure> {
    Username::new(name).map_err(|e| Failure::usage(format!("{name:?}: {e}")))
}

fn open_store(data_dir: &Path) -> Result<Store, Failure> {
    if !data_dir.join(KEY_FILE).exists() {
        return Err(Failure::failed(format!(
            "{} is not an auth-server data directory; run `auth-server init --data-dir {}`",
            data_dir.display(),
            data_dir.display()
        )));
    }
    Store::open(data_dir).map_err(Failure::failed)
}

fn user(action: UserCommand, json: bool) -> Result<(), Failure> {
    let now = switchboard_net::now_unix();
    match action {
        UserCommand::Add {
            name,
            role,
            data_dir,
            password_file,
        } => {
            let user = username(&name)?;
            let store = open_store(&data_dir)?;
            let password = read_password(password_file.as_ref())?;
            let hasher = Hasher::new(Default::default()).map_err(Failure::failed)?;
            let hash = hasher.hash(&password).map_err(Failure::failed)?;
            store
                .add(&user, &hash, role, now)
                .map_err(Failure::failed)?;
            report(json, &format!("added {user} ({role})"), &user, Some(role));
        }
        UserCommand::AddMany {
            prefix,
            count,
            role,
            data_dir,
            password_file,
        } => {
            let users = (0..count)
                .map(|i| username(&format!("{prefix}{i:05}")))
                .collect::<Result<Vec<_>, _>>()?;
            let mut store = open_store(&data_dir)?;
            let password = read_password(password_file.as_ref())?;
            let hasher = Hasher::new(Default::default()).map_err(Failure::failed)?;
            let hash = hasher.hash(&password).map_err(Failure::failed)?;
            let added = store
                .add_many(&users, &hash, role, now)
                .map_err(Failure::failed)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "added": added, "prefix": prefix, "role": role.as_str() })
                );
            } else {
                println!("added {added} accounts {prefix}00000.. ({role}); existing ones kept");
            }
        }
        UserCommand::Import {
            file,
            data_dir,
            write_pubkey,
        } => {
            let (added, kept) = crate::import::import(&file, &data_dir, now)?;
            if let Some(path) = write_pubkey {
                let key = keyfile::load(&data_dir.join(KEY_FILE)).map_err(Failure::failed)?;
                std::fs::write(&path, format!("{}\n", key.auth_key()))
                    .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
            }
            if json {
                println!("{}", serde_json::json!({ "added": added, "kept": kept }));
            } else {
                println!(
                    "{} accounts added, {} kept as they were",
                    added.len(),
                    kept.len()
                );
            }
        }
        UserCommand::Disable { name, data_dir } => {
            let user = username(&name)?;
            open_store(&data_dir)?
                .disable(&user, now)
                .map_err(Failure::failed)?;
            report(json, &format!("disabled {user}"), &user, None);
        }
        UserCommand::Passwd {
            name,
            data_dir,
            password_file,
        } => {
            let user = username(&name)?;
            let store = open_store(&data_dir)?;
            let password = read_password(password_file.as_ref())?;
            let hasher = Hasher::new(Default::default()).map_err(Failure::failed)?;
            let hash = hasher.hash(&password).map_err(Failure::failed)?;
            store.set_password(&user, &hash).map_err(Failure::failed)?;
            report(
                json,
                &format!("changed the password of {user}"),
                &user,
                None,
            );
        }
        UserCommand::List { data_dir } => {
            let accounts = open_store(&data_dir)?.list().map_err(Failure::failed)?;
            if json {
                let rows: Vec<serde_json::Value> = accounts
                    .iter()
                    .map(|a| {
                        serde_json::json!({
                            "user": a.username.as_str(),
                            "role": a.role.as_str(),
                            "disabled": a.disabled,
                            "created_at": a.created_at.0,
                            "last_login": a.last_login.map(|t| t.0),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else {
                println!("{:<32} {:<9} {:<8} LAST LOGIN", "USER", "ROLE", "STATE");
                for a in &accounts {
                    println!(
                        "{:<32} {:<9} {:<8} {}",
                        a.username.as_str(),
                        a.role.as_str(),
                        if a.disabled { "disabled" } else { "enabled" },
                        a.last_login.map_or("never".to_owned(), |t| t.0.to_string())
                    );
                }
            }
        }
    }
    Ok(())
}

fn report(json: bool, text: &str, user: &Username, role: Option<Role>) {
    if json {
        let value = serde_json::json!({
            "user": user.as_str(),
            "ok": true,
            "role": role.map(Role::as_str),
        });
        println!("{value}");
    } else {
        println!("{text}");
    }
}
