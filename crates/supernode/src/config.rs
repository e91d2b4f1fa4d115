//! The supernode's configuration: a TOML file (unknown keys rejected), overridden by flags,
//! validated into [`Config`] before anything binds.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use switchboard_engine::membership::MembershipConfig;
use switchboard_engine::overlay::OverlayConfig;
use switchboard_engine::{AdmissionConfig, DirectoryConfig};
use switchboard_proto::{AuthKey, SoftwareVersion, Username};

/// The configuration file as written; defaults documented per field.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Node key, ticket and bootstrap list. Required.
    pub data_dir: Option<PathBuf>,
    /// UDP address for clients and peers. Default `0.0.0.0:7710`.
    pub listen: Option<SocketAddr>,
    /// Address announced to the auth-server (what clients dial). Default: `listen`, with
    /// 127.0.0.1 if `listen` is unspecified.
    pub public_addr: Option<SocketAddr>,
    /// The auth-server (`host:port`). Required.
    pub auth: Option<String>,
    /// The auth-server's public key (hex). Required.
    pub trust: Option<String>,
    /// The service account. Required.
    pub user: Option<String>,
    /// File holding its password. Required.
    pub password_file: Option<PathBuf>,
    /// Run as a mega-supernode (needs a `mega` account). Default false.
    pub mega: Option<bool>,
    /// With `mega`: stand by without serving clients. Default false.
    pub standby: Option<bool>,
    /// Overlay members to join through. Default none.
    pub seeds: Option<Vec<SocketAddr>>,
    /// Most clients at once. Default 10,000 (1,000 for a normal supernode is typical on a
    /// small machine).
    pub capacity: Option<usize>,
    /// Prometheus `/metrics` and `/healthz`. Default off.
    pub metrics: Option<SocketAddr>,
    /// Client software versions refused with `VersionRejected`. Default none.
    pub refuse_versions: Option<Vec<String>>,
    /// Clients older than this are refused too. Default none.
    pub minimum_version: Option<String>,
    /// Longest lease granted, in seconds. Default 120.
    pub max_lease_secs: Option<u64>,
    /// New handshakes per second. Default 1,000.
    pub handshakes_per_sec: Option<u32>,
    /// Requests per second over all clients. Default 50,000.
    pub requests_per_sec: Option<u32>,
    /// Seconds between announcements to the auth-server. Default 30.
    pub announce_interval_secs: Option<u64>,
    /// Seconds between revocation-list fetches. Default 60.
    pub revocation_poll_secs: Option<u64>,
    /// Seconds a SIGTERM drain may take before the supernode closes anyway. Default 10.
    pub drain_deadline_secs: Option<u64>,
    /// Owners per user in the overlay index (R). Default 3.
    pub replicas: Option<usize>,
    /// Milliseconds between membership probes. Default 1000.
    pub probe_period_ms: Option<u64>,
    /// Milliseconds a probe may take before others probe indirectly. Default 400.
    pub probe_rtt_ms: Option<u64>,
    /// Milliseconds a suspect has to refute before it is declared down. Default 3000.
    pub suspect_timeout_ms: Option<u64>,
    /// Milliseconds a lookup waits for the owners. Default 1500.
    pub lookup_timeout_ms: Option<u64>,
}

/// How the supernode serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An ordinary supernode.
    Normal,
    /// A mega-supernode serving clients.
    Mega,
    /// A mega-supernode on standby.
    MegaStandby,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Node key, ticket, bootstrap list.
    pub data_dir: PathBuf,
    /// Where to listen.
    pub listen: SocketAddr,
    /// What to announce; `None`: the bound address (127.0.0.1 for an unspecified IP).
    pub public_addr: Option<SocketAddr>,
    /// The auth-server.
    pub auth: String,
    /// Its key.
    pub trust: AuthKey,
    /// The service account.
    pub user: Username,
    /// Its password file.
    pub password_file: PathBuf,
    /// How it serves.
    pub mode: Mode,
    /// Overlay members to join through.
    pub seeds: Vec<SocketAddr>,
    /// The overlay's tuning (membership timing, replicas, lookups).
    pub overlay: OverlayConfig,
    /// Metrics address.
    pub metrics: Option<SocketAddr>,
    /// Refused client versions.
    pub refuse_versions: Vec<SoftwareVersion>,
    /// Oldest accepted client version.
    pub minimum_version: Option<SoftwareVersion>,
    /// Directory tuning.
    pub directory: DirectoryConfig,
    /// Admission tuning.
    pub admission: AdmissionConfig,
    /// Announcement period.
    pub announce_interval: Duration,
    /// Revocation poll period.
    pub revocation_poll: Duration,
    /// SIGTERM drain deadline.
    pub drain_deadline: Duration,
}

/// The configuration is unusable (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or parsed.
    #[error(transparent)]
    File(#[from] switchboard_net::config_file::ConfigFileError),
    /// A value is missing or out of range.
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
        let invalid = |key, problem: String| ConfigError::Invalid {
            source_name: source_name.to_owned(),
            key,
            problem,
        };
        let required = |key: &'static str| invalid(key, "is required".to_owned());
        let data_dir = self.data_dir.ok_or_else(|| required("data_dir"))?;
        let auth = self.auth.ok_or_else(|| required("auth"))?;
        let trust = self
            .trust
            .ok_or_else(|| required("trust"))?
            .parse()
            .map_err(|e| invalid("trust", format!("{e}")))?;
        let user = self.user.ok_or_else(|| required("user"))?;
        let user = Username::new(&user).map_err(|e| invalid("user", e.to_string()))?;
        let password_file = self
            .password_file
            .ok_or_else(|| required("password_file"))?;
        let listen = self
            .listen
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 7710)));
        let public_addr = self.public_addr;
        let mode = match (self.mega.unwrap_or(false), self.standby.unwrap_or(false)) {
            (false, false) => Mode::Normal,
            (true, false) => Mode::Mega,
            (true, true) => Mode::MegaStandby,
            (false, true) => return Err(invalid("standby", "needs `mega`".to_owned())),
        };
        let parse_version = |key, text: &str| {
            text.parse::<SoftwareVersion>()
                .map_err(|e| invalid(key, e.to_string()))
        };
        let refuse_versions = self
            .refuse_versions
            .unwrap_or_default()
            .iter()
            .map(|v| parse_version("refuse_versions", v))
            .collect::<Result<Vec<_>, _>>()?;
        let minimum_version = self
            .minimum_version
            .as_deref()
            .map(|v| parse_version("minimum_version", v))
            .transpose()?;
        let capacity = self.capacity.unwrap_or(10_000);
        if capacity == 0 {
            return Err(invalid("capacity", "must be at least 1".to_owned()));
        }
        let defaults = AdmissionConfig::default();
        let requests_per_sec = self
            .requests_per_sec
            .unwrap_or(defaults.requests_per_sec)
            .max(1);
        let handshakes_per_sec = self
            .handshakes_per_sec
            .unwrap_or(defaults.handshakes_per_sec)
            .max(1);
        let admission = AdmissionConfig {
            capacity,
            handshakes_per_sec,
            handshake_burst: handshakes_per_sec.saturating_mul(2),
            requests_per_sec,
            request_burst: requests_per_sec,
            refresh_reserve: requests_per_sec / 10,
            lookup_reserve: requests_per_sec / 10,
            ..defaults
        };
        let max_lease = self.max_lease_secs.unwrap_or(120);
        if max_lease == 0 {
            return Err(invalid("max_lease_secs", "must be at least 1".to_owned()));
        }
        let overlay_defaults = OverlayConfig::default();
        let membership_defaults = MembershipConfig::default();
        let millis =
            |value: Option<u64>, default: Duration| value.map_or(default, Duration::from_millis);
        let replicas = self.replicas.unwrap_or(overlay_defaults.replicas);
        if replicas == 0 || replicas > 7 {
            return Err(invalid("replicas", "must be between 1 and 7".to_owned()));
        }
        let overlay = OverlayConfig {
            replicas,
            lookup_timeout: millis(self.lookup_timeout_ms, overlay_defaults.lookup_timeout),
            max_lease: Duration::from_secs(max_lease),
            membership: MembershipConfig {
                probe_period: millis(self.probe_period_ms, membership_defaults.probe_period),
                probe_rtt: millis(self.probe_rtt_ms, membership_defaults.probe_rtt),
                suspect_to_down_after: millis(
                    self.suspect_timeout_ms,
                    membership_defaults.suspect_to_down_after,
                ),
                ..membership_defaults
            },
            ..overlay_defaults
        };
        // The membership checks its own timing; refuse a bad one here, naming the keys.
        if overlay.membership.probe_rtt.is_zero()
            || overlay.membership.probe_rtt >= overlay.membership.probe_period
            || overlay.membership.suspect_to_down_after.is_zero()
        {
            return Err(invalid(
                "probe_rtt_ms",
                "must be above zero and below probe_period_ms (and suspect_timeout_ms above zero)"
                    .to_owned(),
            ));
        }
        Ok(Config {
            overlay,
            data_dir,
            listen,
            public_addr,
            auth,
            trust,
            user,
            password_file,
            mode,
            seeds: self.seeds.unwrap_or_default(),
            metrics: self.metrics,
            refuse_versions,
            minimum_version,
            directory: DirectoryConfig {
                max_lease: Duration::from_secs(max_lease),
                ..DirectoryConfig::default()
            },
            admission,
            announce_interval: Duration::from_secs(
                self.announce_interval_secs.unwrap_or(30).max(1),
            ),
            revocation_poll: Duration::from_secs(self.revocation_poll_secs.unwrap_or(60).max(1)),
            drain_deadline: Duration::from_secs(self.drain_deadline_secs.unwrap_or(10).max(1)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/supernode.toml");
        let config = FileConfig::load(&path)
            .unwrap()
            .validate("example")
            .unwrap();
        assert_eq!(config.mode, Mode::Normal);
        assert_eq!(config.admission.capacity, 1000);
        assert_eq!(config.refuse_versions.len(), 1);
        assert_eq!(config.overlay.replicas, 3);
        assert_eq!(
            config.overlay.membership.probe_period,
            Duration::from_millis(1000)
        );
    }

    #[test]
    fn standby_without_mega_is_refused() {
        let file: FileConfig = toml::from_str(
            "data_dir = \"/x\"\nauth = \"a:1\"\ntrust = \"\"\nuser = \"sn\"\npassword_file = \"/p\"\nstandby = true\n",
        )
        .unwrap();
        assert!(file.validate("t").is_err());
    }
}
