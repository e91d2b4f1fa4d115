//! The auth-server's configuration: a TOML file (unknown keys rejected), overridden by flags,
//! validated into [`Config`] before anything binds.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use switchboard_engine::ThrottleConfig;
pub use switchboard_net::config_file::BelowMinimum;

use crate::password::HashParams;

/// `ticket_lifetime_secs` below this is accepted with a warning: the network keeps running
/// without the auth-server only as long as its tickets last, so under an hour a short outage of
/// the auth-server becomes an outage of the network.
pub const MIN_TICKET_LIFETIME_SECS: u64 = 60 * 60;

/// `announce_ttl_secs` below this is accepted with a warning: it is twice the supernodes'
/// shortest recommended announcement interval (5 s), so that one lost announcement does not
/// drop a live supernode from the bootstrap list.
pub const MIN_ANNOUNCE_TTL_SECS: u64 = 10;

/// The configuration file as written. Every field is optional; the defaults are in
/// [`Config::default`] and documented per field.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where the signing key and the account database live. No default: required here or as
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// UDP address for logins. Default `0.0.0.0:7700`.
    pub listen: Option<SocketAddr>,
    /// TCP address for `/metrics` and `/healthz`. Default: none (off).
    pub metrics: Option<SocketAddr>,
    /// Whether `client signup` may create `user` accounts. Default `false`.
    pub open_signup: Option<bool>,
    /// Lifetime of an issued ticket, in seconds. Default 43,200 (12 hours); between 1 and
    /// 86,400; below [`MIN_TICKET_LIFETIME_SECS`] (3,600) accepted with a warning.
    pub ticket_lifetime_secs: Option<u64>,
    /// Password checks running at once (each takes one core and `argon2.memory_kib`).
    /// Default: the number of cores; at least 1.
    pub max_concurrent_logins: Option<usize>,
    /// Logins waiting for a free check before new ones get `Busy`. Default 64; at least 1
    /// (every login waits in the queue, if only for an instant).
    pub max_queued_logins: Option<usize>,
    /// Lifetime of a supernode's announcement in the bootstrap list, in seconds. Default 90;
    /// at least 1; below [`MIN_ANNOUNCE_TTL_SECS`] (10) accepted with a warning.
    pub announce_ttl_secs: Option<u64>,
    /// argon2id cost.
    pub argon2: Option<Argon2Config>,
    /// Login throttling, applied per account and per source address.
    pub throttle: Option<ThrottleFileConfig>,
    /// New tickets (logins that succeed) per account per minute, on average. Default 2; at
    /// least 1. A refresh of a device's ticket does not count.
    pub tickets_per_account_per_min: Option<u32>,
    /// New tickets per account in a burst. Default 16 (a user's 8 devices logging in twice,
    /// or a restart of 16 supernodes sharing a service account); at least 1. One account with
    /// a farm of node keys gets this many tickets at once, then 2 a minute.
    pub ticket_burst_per_account: Option<u32>,
    /// Clients promoted into supernodes at once, network-wide (active promotions: not stepped
    /// down, ticket not expired). Default 1,000; at least 1. A bound on how much of the
    /// overlay hostile or mistaken nominations can fill with promoted nodes.
    pub max_promoted: Option<u32>,
    /// Nominations accepted per nominating supernode per hour. Default 20; at least 1. One
    /// hostile supernode account promotes at most this many clients an hour.
    pub nominations_per_hour: Option<u32>,
    /// Lifetime of a promoted ticket in seconds. Default 3,600; at least 60. A promoted node
    /// that steps down without saying so (it crashed, or lies) keeps serving at most this
    /// long; refreshes are granted only while its promotion is active.
    pub promoted_ticket_secs: Option<u64>,
}

/// `[argon2]`: never below OWASP's minimum (19,456 KiB, 2 iterations, parallelism 1).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Argon2Config {
    /// Memory per hash in KiB. Default 19,456.
    pub memory_kib: Option<u32>,
    /// Iterations. Default 2.
    pub iterations: Option<u32>,
    /// Parallelism. Default 1.
    pub parallelism: Option<u32>,
}

/// `[throttle]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleFileConfig {
    /// Failed logins allowed before the first lockout. Default 5.
    pub free_failures: Option<u32>,
    /// First lockout in milliseconds, doubling with each further failure. Default 1,000; at
    /// least 1 (zero would turn lockouts off) and at most `max_lockout_secs`.
    pub base_lockout_ms: Option<u64>,
    /// Longest lockout in seconds. Default 900; at least 1.
    pub max_lockout_secs: Option<u64>,
    /// Failures older than this many seconds are forgotten. Default 3,600; at least 1 (zero
    /// would forget every failure at once, and nobody would ever be locked out).
    pub forget_after_secs: Option<u64>,
    /// Login attempts per second per account and per address, on average. Default 10; at
    /// least 1.
    pub attempts_per_sec: Option<u32>,
    /// Attempts in a burst. Default 20; at least 1.
    pub burst: Option<u32>,
    /// Accounts and addresses tracked at once. Default 100,000; at least 1.
    pub max_keys: Option<usize>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the key and database live.
    pub data_dir: PathBuf,
    /// UDP address for logins.
    pub listen: SocketAddr,
    /// Metrics address, if any.
    pub metrics: Option<SocketAddr>,
    /// Open sign-up.
    pub open_signup: bool,
    /// Ticket lifetime.
    pub ticket_lifetime: Duration,
    /// Concurrent password checks.
    pub max_concurrent_logins: usize,
    /// Logins allowed to wait for a check.
    pub max_queued_logins: usize,
    /// Announcement lifetime.
    pub announce_ttl: Duration,
    /// argon2id cost.
    pub hash: HashParams,
    /// Throttling.
    pub throttle: ThrottleConfig,
    /// New tickets per account per minute.
    pub tickets_per_account_per_min: u32,
    /// New tickets per account in a burst.
    pub ticket_burst_per_account: u32,
    /// Active promotions at once.
    pub max_promoted: u32,
    /// Nominations per nominator per hour.
    pub nominations_per_hour: u32,
    /// Lifetime of a promoted ticket.
    pub promoted_ticket_lifetime: Duration,
    /// Values accepted below their production minimum; logged once at start-up.
    pub warnings: Vec<BelowMinimum>,
}

/// The configuration is unusable. Exit code 2, naming the file, the key and the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or parsed.
    #[error(transparent)]
    File(#[from] switchboard_net::config_file::ConfigFileError),
    /// A value is out of range.
    #[error("{source_name}: `{key}` {problem}")]
    Invalid {
        /// The file, or "command line".
        source_name: String,
        /// Which key.
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
}

impl FileConfig {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Ok(switchboard_net::config_file::load(path)?)
    }

    /// Validates into a [`Config`]; `source_name` names the file in errors.
    pub fn validate(self, source_name: &str) -> Result<Config, ConfigError> {
        let invalid = |key, problem: &str| ConfigError::Invalid {
            source_name: source_name.to_owned(),
            key,
            problem: problem.to_owned(),
        };
        let data_dir = self
            .data_dir
            .ok_or_else(|| invalid("data_dir", "is required (or pass --data-dir)"))?;
        let lifetime = self.ticket_lifetime_secs.unwrap_or(12 * 60 * 60);
        if lifetime == 0 || lifetime > switchboard_proto::limits::MAX_TICKET_LIFETIME_SECS {
            return Err(invalid(
                "ticket_lifetime_secs",
                "must be between 1 and 86400",
            ));
        }
        let promoted_lifetime = self.promoted_ticket_secs.unwrap_or(3_600);
        if !(60..=switchboard_proto::limits::MAX_TICKET_LIFETIME_SECS).contains(&promoted_lifetime)
        {
            return Err(invalid(
                "promoted_ticket_secs",
                "must be between 60 and 86400",
            ));
        }
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let positive = |key, value| at_least_one(value, key, source_name);
        let max_concurrent_logins = positive(
            "max_concurrent_logins",
            self.max_concurrent_logins.unwrap_or(cores),
        )?;
        let max_queued_logins =
            positive("max_queued_logins", self.max_queued_logins.unwrap_or(64))?;
        let announce_ttl = at_least_one(
            self.announce_ttl_secs.unwrap_or(90),
            "announce_ttl_secs",
            source_name,
        )?;
        let argon2 = self.argon2.unwrap_or_default();
        let defaults = HashParams::default();
        let hash = HashParams {
            memory_kib: argon2.memory_kib.unwrap_or(defaults.memory_kib),
            iterations: argon2.iterations.unwrap_or(defaults.iterations),
            parallelism: argon2.parallelism.unwrap_or(defaults.parallelism),
        };
        if hash.memory_kib < defaults.memory_kib
            || hash.iterations < defaults.iterations
            || hash.parallelism < defaults.parallelism
        {
            return Err(invalid(
                "argon2",
                "is below OWASP's minimum (memory_kib 19456, iterations 2, parallelism 1)",
            ));
        }
        let t = self.throttle.unwrap_or_default();
        let d = ThrottleConfig::default();
        let secs = |key, value: Option<u64>, default| match value {
            None => Ok(default),
            Some(secs) => at_least_one(secs, key, source_name).map(Duration::from_secs),
        };
        let count = |key, value: Option<u32>, default| {
            at_least_one(value.unwrap_or(default), key, source_name)
        };
        let throttle = ThrottleConfig {
            free_failures: t.free_failures.unwrap_or(d.free_failures),
            base_lockout: match t.base_lockout_ms {
                None => d.base_lockout,
                Some(ms) => at_least_one(ms, "throttle.base_lockout_ms", source_name)
                    .map(Duration::from_millis)?,
            },
            max_lockout: secs(
                "throttle.max_lockout_secs",
                t.max_lockout_secs,
                d.max_lockout,
            )?,
            forget_after: secs(
                "throttle.forget_after_secs",
                t.forget_after_secs,
                d.forget_after,
            )?,
            attempts_per_sec: count(
                "throttle.attempts_per_sec",
                t.attempts_per_sec,
                d.attempts_per_sec,
            )?,
            burst: count("throttle.burst", t.burst, d.burst)?,
            max_keys: at_least_one(
                t.max_keys.unwrap_or(d.max_keys),
                "throttle.max_keys",
                source_name,
            )?,
        };
        if throttle.base_lockout > throttle.max_lockout {
            return Err(invalid(
                "throttle.base_lockout_ms",
                "must not exceed max_lockout_secs",
            ));
        }
        let warnings = [
            BelowMinimum::check(
                source_name,
                "ticket_lifetime_secs",
                lifetime,
                MIN_TICKET_LIFETIME_SECS,
                "the network outlives an auth-server outage only as long as its tickets",
            ),
            BelowMinimum::check(
                source_name,
                "announce_ttl_secs",
                announce_ttl,
                MIN_ANNOUNCE_TTL_SECS,
                "one lost announcement drops a live supernode from the bootstrap list",
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        Ok(Config {
            data_dir,
            listen: self
                .listen
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 7700))),
            metrics: self.metrics,
            open_signup: self.open_signup.unwrap_or(false),
            ticket_lifetime: Duration::from_secs(lifetime),
            max_concurrent_logins,
            max_queued_logins,
            announce_ttl: Duration::from_secs(announce_ttl),
            hash,
            throttle,
            tickets_per_account_per_min: at_least_one(
                self.tickets_per_account_per_min.unwrap_or(2),
                "tickets_per_account_per_min",
                source_name,
            )?,
            ticket_burst_per_account: at_least_one(
                self.ticket_burst_per_account.unwrap_or(16),
                "ticket_burst_per_account",
                source_name,
            )?,
            max_promoted: at_least_one(
                self.max_promoted.unwrap_or(1_000),
                "max_promoted",
                source_name,
            )?,
            nominations_per_hour: at_least_one(
                self.nominations_per_hour.unwrap_or(20),
                "nominations_per_hour",
                source_name,
            )?,
            promoted_ticket_lifetime: Duration::from_secs(promoted_lifetime),
            warnings,
        })
    }
}

/// `value`, or [`ConfigError::Invalid`] naming `key` if it is zero: a zero count, rate or
/// period would stop a service or turn a protection off, and is refused rather than quietly
/// raised.
fn at_least_one<T: Copy + PartialEq + From<u8>>(
    value: T,
    key: &'static str,
    source_name: &str,
) -> Result<T, ConfigError> {
    if value == T::from(0) {
        return Err(ConfigError::Invalid {
            source_name: source_name.to_owned(),
            key,
            problem: "must be at least 1".to_owned(),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/auth-server.toml");
        let config = FileConfig::load(&path)
            .unwrap()
            .validate("example")
            .unwrap();
        assert!(!config.open_signup);
        assert_eq!(config.hash, HashParams::default());
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_name() {
        let error = toml::from_str::<FileConfig>("data_dir = \"/x\"\nlisten_on = \"1\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("listen_on"), "{error}");
    }

    #[test]
    fn an_unknown_key_in_throttle_is_refused_with_its_name() {
        let error = toml::from_str::<FileConfig>("data_dir = \"/x\"\n[throttle]\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("bogus"), "{error}");
    }

    #[test]
    fn an_unknown_key_in_argon2_is_refused_with_its_name() {
        let error = toml::from_str::<FileConfig>("data_dir = \"/x\"\n[argon2]\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("bogus"), "{error}");
    }

    #[test]
    fn zero_is_refused_naming_the_key_for_every_count_rate_and_period() {
        let cases = [
            ("ticket_lifetime_secs", "ticket_lifetime_secs = 0"),
            ("max_concurrent_logins", "max_concurrent_logins = 0"),
            ("max_queued_logins", "max_queued_logins = 0"),
            ("announce_ttl_secs", "announce_ttl_secs = 0"),
            (
                "throttle.base_lockout_ms",
                "[throttle]\nbase_lockout_ms = 0",
            ),
            (
                "throttle.max_lockout_secs",
                "[throttle]\nmax_lockout_secs = 0",
            ),
            (
                "throttle.forget_after_secs",
                "[throttle]\nforget_after_secs = 0",
            ),
            (
                "throttle.attempts_per_sec",
                "[throttle]\nattempts_per_sec = 0",
            ),
            ("throttle.burst", "[throttle]\nburst = 0"),
            ("throttle.max_keys", "[throttle]\nmax_keys = 0"),
            (
                "tickets_per_account_per_min",
                "tickets_per_account_per_min = 0",
            ),
            ("ticket_burst_per_account", "ticket_burst_per_account = 0"),
        ];
        let mut wrong = Vec::new();
        for (key, line) in cases {
            let file: FileConfig = toml::from_str(&format!("data_dir = \"/x\"\n{line}\n")).unwrap();
            match file.validate("bad.toml") {
                Ok(_) => wrong.push(format!("{key} = 0 was accepted")),
                Err(error) => {
                    let text = error.to_string();
                    let named = matches!(&error, ConfigError::Invalid { key: k, .. } if *k == key);
                    let says_one = text.contains("at least 1") || text.contains("between 1");
                    if !named || !text.contains("bad.toml") || !says_one {
                        wrong.push(format!("{key} = 0 gave {text:?}"));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn a_value_below_its_production_minimum_is_accepted_with_a_warning_naming_the_key() {
        let cases = [
            ("ticket_lifetime_secs", MIN_TICKET_LIFETIME_SECS),
            ("announce_ttl_secs", MIN_ANNOUNCE_TTL_SECS),
        ];
        let mut wrong = Vec::new();
        for (key, minimum) in cases {
            let validate = |value: u64| {
                toml::from_str::<FileConfig>(&format!("data_dir = \"/x\"\n{key} = {value}\n"))
                    .unwrap()
                    .validate("t.toml")
            };
            match validate(minimum - 1) {
                Err(e) => wrong.push(format!("{key} = {} refused: {e}", minimum - 1)),
                Ok(config) => {
                    let keys: Vec<_> = config.warnings.iter().map(|w| w.key).collect();
                    let text = config.warnings.first().map(ToString::to_string);
                    if keys != [key] || !text.as_deref().is_some_and(|t| t.contains(key)) {
                        wrong.push(format!("{key} below {minimum} warned {keys:?} {text:?}"));
                    }
                }
            }
            match validate(minimum) {
                Ok(config) if config.warnings.is_empty() => {}
                other => wrong.push(format!("{key} = {minimum} gave {other:?}")),
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn the_defaults_and_the_example_config_warn_of_nothing() {
        let defaults = toml::from_str::<FileConfig>("data_dir = \"/x\"\n")
            .unwrap()
            .validate("t")
            .unwrap();
        assert!(defaults.warnings.is_empty(), "{:?}", defaults.warnings);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/auth-server.toml");
        let example = FileConfig::load(&path)
            .unwrap()
            .validate("example")
            .unwrap();
        assert!(example.warnings.is_empty(), "{:?}", example.warnings);
    }

    #[test]
    fn weak_argon2_parameters_are_refused() {
        let config: FileConfig =
            toml::from_str("data_dir = \"/x\"\n[argon2]\nmemory_kib = 4096\n").unwrap();
        let error = config.validate("test.toml").unwrap_err().to_string();
        assert!(error.contains("`argon2`"), "{error}");
    }
}
