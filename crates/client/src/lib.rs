//! The client: logs in, keeps one connection to a home supernode, registers, looks peers up,
//! watches presence and talks to peers directly (DESIGN.md sections 2 and 6).
//!
//! This crate owns the client role: its command line ([`Cli`]), the session with a home
//! supernode ([`session`], [`online`]) and the queries ([`query`]). The profile on disk and the
//! auth-server exchanges live in `switchboard-account` (re-exported here as [`profile`] and
//! [`login`]), below this crate and the supernode's, and the `client` binary lives in
//! `switchboard-client-app`, which hosts the supernode role as well when the client is
//! promoted. It must never read a password from argv, never stampede (every retry goes through
//! capped full jitter), and never trust a record or a ticket it has not verified.

pub mod config;
pub mod online;
pub mod promotable;
pub mod query;
pub mod session;
pub mod traverse;

pub use switchboard_account::{login, profile};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code of bad usage, and of a command that exists in the contract but is not built yet.
pub const EXIT_USAGE: u8 = 2;

/// Exit code of a command that failed.
pub const EXIT_FAILED: u8 = 1;

/// Switchboard's client: log in, go online, look peers up, talk to them directly.
///
/// Passwords are read from stdin, never from the command line.
#[derive(Debug, Parser)]
#[command(name = "client", version, about, long_about = None)]
pub struct Cli {
    /// TOML configuration (unknown keys are rejected); flags override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The client's commands (DESIGN.md section 8).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in (password on stdin); store the node key, ticket, auth key and bootstrap list in
    /// the profile.
    Login {
        /// The profile directory.
        #[arg(long, value_name = "DIR")]
        profile: Option<PathBuf>,
        /// The auth-server's address.
        #[arg(long, value_name = "ADDR")]
        auth: Option<String>,
        /// The auth-server's public key (64 hex digits), or `@FILE` to read it from a file.
        #[arg(long, value_name = "PUBKEY")]
        trust: Option<String>,
        /// The account.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Read the password from the first line of this file instead of stdin.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Create an account on a server with open sign-up (password on stdin), then log in.
    Signup {
        /// The profile directory.
        #[arg(long, value_name = "DIR")]
        profile: Option<PathBuf>,
        /// The auth-server's address.
        #[arg(long, value_name = "ADDR")]
        auth: Option<String>,
        /// The auth-server's public key (64 hex digits).
        #[arg(long, value_name = "PUBKEY")]
        trust: Option<String>,
        /// The account to create.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
    /// Stay online: register, refresh, fail over, and print messages from peers.
    Online {
        /// The profile directory.
        #[arg(long, value_name = "DIR")]
        profile: Option<PathBuf>,
        /// UDP address for direct connections from peers.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Offer to become a supernode when the overlay needs capacity: the home dials back
        /// the --serve address and, when the overlay runs hot, nominates this client, which
        /// then serves as a supernode in this same process.
        #[arg(long)]
        promotable: bool,
        /// With --promotable: how many clients this device could serve.
        #[arg(long, value_name = "N", default_value_t = 100, requires = "promotable")]
        capacity: u32,
        /// With --promotable: the UDP address to serve on once promoted (port 0: any; default:
        /// --listen's address with any port).
        #[arg(long, value_name = "ADDR", requires = "promotable")]
        serve: Option<std::net::SocketAddr>,
        /// With --promotable: a supernode configuration file for the promoted role's tuning.
        #[arg(long, value_name = "FILE", requires = "promotable")]
        serve_config: Option<PathBuf>,
    },
    /// Print the verified records of NAME's online devices.
    Lookup {
        /// Whom to find.
        name: String,
        /// The profile directory.
        #[arg(long, value_name = "DIR")]
        profile: Option<PathBuf>,
    },
    /// Look NAME up and deliver TEXT directly over QUIC; exit 0 once delivered.
    Send {
        /// To whom.
        name: String,
        /// What.
        text: String,
        /// The profile directory.
        #[arg(long, value_name = "DIR")]
        profile: Option<PathBuf>,
    },
    /// Stream presence changes of these users.
    Watch {
        /// Whom to watch.
        #[arg(required = true)]
        names: Vec<String>,
        /// The profile directory.
        #[arg(long, value_name = "DIR")]
        profile: Option<PathBuf>,
    },
}

/// Runs a parsed command line and returns the process's exit code. `client online
/// --promotable` needs a way to host the supernode role: see [`run_hosting`].
pub fn run(cli: Cli) -> ExitCode {
    run_hosting(cli, None)
}

/// Runs a parsed command line; `host` starts the supernode role when this client is
/// promoted (the `client` binary passes the supernode crate's).
pub fn run_hosting(cli: Cli, host: Option<promotable::HostRole>) -> ExitCode {
    let json = cli.json;
    let file = match &cli.config {
        Some(path) => match config::FileConfig::load(path) {
            Ok(file) => file,
            Err(e) => return fail(EXIT_USAGE, e),
        },
        None => config::FileConfig::default(),
    };
    match run_with(cli.command, &file, json, host) {
        Ok(code) => code,
        Err(missing) => fail(
            EXIT_USAGE,
            format!(
                "--{missing} is required (on the command line or as `{}` in --config)",
                missing.replace('-', "_")
            ),
        ),
    }
}

/// `flag` if given, else the config file's value, else an error naming the option.
fn pick<T: Clone>(
    flag: Option<T>,
    file: &Option<T>,
    name: &'static str,
) -> Result<T, &'static str> {
    flag.or_else(|| file.clone()).ok_or(name)
}

fn run_with(
    command: Command,
    file: &config::FileConfig,
    json: bool,
    host: Option<promotable::HostRole>,
) -> Result<ExitCode, &'static str> {
    let profile_of = |flag: Option<PathBuf>| pick(flag, &file.profile, "profile");
    Ok(match command {
        Command::Login {
            profile,
            auth,
            trust,
            user,
            password_file,
        } => login_command(
            &profile_of(profile)?,
            &pick(auth, &file.auth, "auth")?,
            &pick(trust, &file.trust, "trust")?,
            &pick(user, &file.user, "user")?,
            password_file.as_deref(),
            false,
            json,
        ),
        Command::Signup {
            profile,
            auth,
            trust,
            user,
        } => login_command(
            &profile_of(profile)?,
            &pick(auth, &file.auth, "auth")?,
            &pick(trust, &file.trust, "trust")?,
            &pick(user, &file.user, "user")?,
            None,
            true,
            json,
        ),
        Command::Online {
            profile,
            listen,
            promotable,
            capacity,
            serve,
            serve_config,
        } => {
            let listen = listen.or_else(|| file.listen.clone());
            let promotable = promotable.then_some(PromotableArgs {
                capacity,
                serve,
                config: serve_config,
                host,
            });
            online_command(&profile_of(profile)?, listen.as_deref(), promotable)
        }
        Command::Lookup { name, profile } => lookup_command(&profile_of(profile)?, &name, json),
        Command::Send {
            name,
            text,
            profile,
        } => send_command(&profile_of(profile)?, &name, &text, json),
        Command::Watch { names, profile } => watch_command(&profile_of(profile)?, &names),
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(EXIT_FAILED, format!("tokio runtime: {e}")))
}

fn session_failure(e: &session::SessionError) -> ExitCode {
    match e {
        session::SessionError::Unauthorized(reason) => {
            fail(EXIT_FAILED, format!("{reason}; run `client login` again"))
        }
        other => fail(EXIT_FAILED, other),
    }
}

/// `--promotable` and its companions, before they are checked.
struct PromotableArgs {
    capacity: u32,
    serve: Option<std::net::SocketAddr>,
    config: Option<PathBuf>,
    host: Option<promotable::HostRole>,
}

fn online_command(
    profile: &std::path::Path,
    listen: Option<&str>,
    promotable: Option<PromotableArgs>,
) -> ExitCode {
    let listen: std::net::SocketAddr = match listen.unwrap_or("0.0.0.0:0").parse() {
        Ok(addr) => addr,
        Err(e) => return fail(EXIT_USAGE, format!("--listen: {e}")),
    };
    let promotable =
        match promotable {
            None => None,
            Some(PromotableArgs { host: None, .. }) => return fail(
                EXIT_USAGE,
                "--promotable: this build cannot host the supernode role (use the `client` binary)",
            ),
            Some(PromotableArgs { capacity: 0, .. }) => {
                return fail(EXIT_USAGE, "--capacity must be at least 1")
            }
            Some(PromotableArgs {
                capacity,
                serve,
                config,
                host: Some(host),
            }) => Some(promotable::Promotable {
                capacity,
                serve: serve.unwrap_or_else(|| std::net::SocketAddr::new(listen.ip(), 0)),
                config,
                host,
            }),
        };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let profile = profile::Profile::new(profile);
    match runtime.block_on(online::run(
        profile,
        listen,
        promotable,
        switchboard_net::shutdown::signal(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(online::OnlineError::Session(e)) => session_failure(&e),
        Err(e) => fail(EXIT_FAILED, e),
    }
}

fn parse_user(name: &str) -> Result<switchboard_proto::Username, ExitCode> {
    switchboard_proto::Username::new(name).map_err(|e| fail(EXIT_USAGE, format!("{name:?}: {e}")))
}

fn lookup_command(profile: &std::path::Path, name: &str, json: bool) -> ExitCode {
    let user = match parse_user(name) {
        Ok(user) => user,
        Err(code) => return code,
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        let context = query::context(profile)?;
        query::lookup(&context, &user).await
    });
    match result {
        Ok(devices) => {
            let devices: Vec<query::Device> = devices.into_iter().map(|(d, _)| d).collect();
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&devices).unwrap_or_else(|_| "[]".to_owned())
                );
            } else {
                for device in &devices {
                    let endpoints: Vec<String> = device
                        .endpoints
                        .iter()
                        .map(ToString::to_string)
                        .chain(device.reflexive.map(|r| format!("{r} (reflexive)")))
                        .collect();
                    println!(
                        "{} {} (device {})",
                        device.user,
                        endpoints.join(" "),
                        device.node.get(..8).unwrap_or(&device.node)
                    );
                }
            }
            if devices.is_empty() {
                eprintln!("client: {user} is not online");
                return ExitCode::from(EXIT_FAILED);
            }
            ExitCode::SUCCESS
        }
        Err(e) => session_failure(&e),
    }
}

fn send_command(profile: &std::path::Path, name: &str, text: &str, json: bool) -> ExitCode {
    let user = match parse_user(name) {
        Ok(user) => user,
        Err(code) => return code,
    };
    let Ok(text) = switchboard_proto::messages::Text::try_from(text) else {
        return fail(
            EXIT_USAGE,
            format!(
                "the text is longer than {} bytes",
                switchboard_proto::limits::MAX_TEXT_LEN
            ),
        );
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        let context = query::context(profile).map_err(query::SendError::from)?;
        query::send(&context, &user, text).await
    });
    match result {
        Ok((node, path)) => {
            if json {
                let via = match path {
                    query::Path::Relayed { via } => Some(via.to_string()),
                    _ => None,
                };
                let kind = match path {
                    query::Path::Direct => "direct",
                    query::Path::Punched => "punched",
                    query::Path::Relayed { .. } => "relayed",
                };
                println!(
                    "{}",
                    serde_json::json!({
                        "user": user.to_string(),
                        "device": node.to_string(),
                        "path": kind,
                        "via": via,
                    })
                );
            } else {
                println!("delivered to {user} (device {}, {path})", node.short());
            }
            ExitCode::SUCCESS
        }
        Err(query::SendError::Session(e)) => session_failure(&e),
        Err(e) => fail(EXIT_FAILED, e),
    }
}

fn watch_command(profile: &std::path::Path, names: &[String]) -> ExitCode {
    let mut users = Vec::new();
    for name in names {
        match parse_user(name) {
            Ok(user) => users.push(user),
            Err(code) => return code,
        }
    }
    let Ok(users) = switchboard_proto::messages::WatchList::try_from(users) else {
        return fail(
            EXIT_USAGE,
            format!(
                "at most {} users per watch",
                switchboard_proto::limits::MAX_WATCH_BATCH
            ),
        );
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        let context = query::context(profile)?;
        query::watch(&context, users, switchboard_net::shutdown::signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => session_failure(&e),
    }
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("client: {message}");
    ExitCode::from(code)
}

/// Reads the password: the first line of `file`, or of stdin. Never from argv.
fn read_password(
    file: Option<&std::path::Path>,
) -> Result<switchboard_proto::messages::Password, String> {
    use std::io::BufRead;
    let mut line = String::new();
    match file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            line = text.lines().next().unwrap_or_default().to_owned();
        }
        None => {
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("reading the password from stdin: {e}"))?;
        }
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err("no password given: write it on stdin".to_owned());
    }
    switchboard_proto::messages::Password::new(password).ok_or_else(|| {
        format!(
            "the password is longer than {} bytes",
            switchboard_proto::limits::MAX_PASSWORD_LEN
        )
    })
}

fn login_command(
    profile: &std::path::Path,
    auth: &str,
    trust: &str,
    user: &str,
    password_file: Option<&std::path::Path>,
    signup: bool,
    json: bool,
) -> ExitCode {
    let user = match switchboard_proto::Username::new(user) {
        Ok(user) => user,
        Err(e) => return fail(EXIT_USAGE, format!("--user {user:?}: {e}")),
    };
    let trust = match switchboard_net::config_file::trust_key(trust) {
        Ok(key) => key,
        Err(e) => return fail(EXIT_USAGE, format!("--trust: {e}")),
    };
    let password = match read_password(password_file) {
        Ok(password) => password,
        Err(e) => return fail(EXIT_USAGE, e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(EXIT_FAILED, format!("tokio runtime: {e}")),
    };
    let profile = profile::Profile::new(profile);
    let result = runtime.block_on(login::login(
        &profile,
        auth,
        trust,
        user.clone(),
        password,
        signup,
    ));
    match result {
        Ok(done) => {
            let body = done.ticket.body_unverified();
            let lifetime = body.expires_at.since(body.issued_at);
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "user": user.as_str(),
                        "role": body.role.as_str(),
                        "node": body.node.to_string(),
                        "expires_at": body.expires_at.0,
                        "bootstrap": done.bootstrap,
                        "hosts": done.hosts,
                    })
                );
            } else {
                println!(
                    "logged in as {user} ({}); ticket valid for {} h; {} supernodes in the host cache",
                    body.role,
                    lifetime / 3600,
                    done.hosts
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(EXIT_FAILED, e),
    }
}
