//! The auth-server's configuration: a TOML file (unknown keys rejected), overridden by flags,
//! validated into [`Config`] before anything binds.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use switchboard_engine::ThrottleConfig;

use crate::password::HashParams;

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
    /// Lifetime of an issued ticket, in seconds. Default 43,200 (12 hours); at most 86,400.
    pub ticket_lifetime_secs: Option<u64>,
    /// Password checks running at once (each takes one core and `argon2.memory_kib`).
    /// Default: the number of cores.
    pub max_concurrent_logins: Option<usize>,
    /// Logins waiting for a free check before new ones get `Busy`. Default 64.
    pub max_queued_logins: Option<usize>,
    /// Lifetime of a supernode's announcement in the bootstrap list, in seconds. Default 90.
    pub announce_ttl_secs: Option<u64>,
    /// argon2id cost.
    pub argon2: Option<Argon2Config>,
    /// Login throttling, applied per account and per source address.
    pub throttle: Option<ThrottleFileConfig>,
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
    /// First lockout in milliseconds, doubling with each further failure. Default 1,000.
    pub base_lockout_ms: Option<u64>,
    /// Longest lockout in seconds. Default 900.
    pub max_lockout_secs: Option<u64>,
    /// Failures older than this many seconds are forgotten. Default 3,600.
    pub forget_after_secs: Option<u64>,
    /// Login attempts per second per account and per address, on average. Default 10.
    pub attempts_per_sec: Option<u32>,
    /// Attempts in a burst. Default 20.
    pub burst: Option<u32>,
    /// Accounts and addresses tracked at once. Default 100,000.
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
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let max_concurrent_logins = self.max_concurrent_logins.unwrap_or(cores);
        if max_concurrent_logins == 0 {
            return Err(invalid("max_concurrent_logins", "must be at least 1"));
        }
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
        let throttle = ThrottleConfig {
            free_failures: t.free_failures.unwrap_or(d.free_failures),
            base_lockout: t
                .base_lockout_ms
                .map_or(d.base_lockout, Duration::from_millis),
            max_lockout: t
                .max_lockout_secs
                .map_or(d.max_lockout, Duration::from_secs),
            forget_after: t
                .forget_after_secs
                .map_or(d.forget_after, Duration::from_secs),
            attempts_per_sec: t.attempts_per_sec.unwrap_or(d.attempts_per_sec),
            burst: t.burst.unwrap_or(d.burst),
            max_keys: t.max_keys.unwrap_or(d.max_keys),
        };
        if throttle.attempts_per_sec == 0 || throttle.burst == 0 || throttle.max_keys == 0 {
            return Err(invalid(
                "throttle",
                "attempts_per_sec, burst and max_keys must be at least 1",
            ));
        }
        if throttle.base_lockout > throttle.max_lockout {
            return Err(invalid(
                "throttle.base_lockout_ms",
                "must not exceed max_lockout_secs",
            ));
        }
        Ok(Config {
            data_dir,
            listen: self
                .listen
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 7700))),
            metrics: self.metrics,
            open_signup: self.open_signup.unwrap_or(false),
            ticket_lifetime: Duration::from_secs(lifetime),
            max_concurrent_logins,
            max_queued_logins: self.max_queued_logins.unwrap_or(64),
            announce_ttl: Duration::from_secs(self.announce_ttl_secs.unwrap_or(90).max(1)),
            hash,
            throttle,
        })
    }
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
    fn weak_argon2_parameters_are_refused() {
        let config: FileConfig =
            toml::from_str("data_dir = \"/x\"\n[argon2]\nmemory_kib = 4096\n").unwrap();
        let error = config.validate("test.toml").unwrap_err().to_string();
        assert!(error.contains("`argon2`"), "{error}");
    }
}
