//! The supernode's configuration: a TOML file (unknown keys rejected), overridden by flags,
//! validated into [`Config`] before anything binds.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use switchboard_engine::membership::MembershipConfig;
use switchboard_engine::overlay::OverlayConfig;
use switchboard_engine::standby::StandbyConfig;
use switchboard_engine::{AdmissionConfig, DirectoryConfig};
pub use switchboard_net::config_file::BelowMinimum;
use switchboard_proto::{AuthKey, SoftwareVersion, Username};

/// `max_lease_secs` below this is accepted with a warning: clients refresh at a third of their
/// lease, so a shorter lease means a refresh from every client more often than every 3 s, and
/// a full supernode spends its request budget on refreshes.
pub const MIN_MAX_LEASE_SECS: u64 = 10;

/// `announce_interval_secs` below this is accepted with a warning: one auth-server hears every
/// supernode's announcements, and 5 s already lets a supernode re-enter the bootstrap list
/// within seconds of a restart.
pub const MIN_ANNOUNCE_INTERVAL_SECS: u64 = 5;

/// `revocation_poll_secs` below this is accepted with a warning: every supernode fetching the
/// list more often loads the one auth-server, while a revoked ticket already lasts at most a
/// lease longer.
pub const MIN_REVOCATION_POLL_SECS: u64 = 5;

/// `probe_period_ms` below this is accepted with a warning: the probe timeout (`probe_rtt_ms`)
/// must fit inside the period, and under 200 ms a WAN round trip or a scheduling pause makes
/// healthy members suspects, besides a probe per member five times a second.
pub const MIN_PROBE_PERIOD_MS: u64 = 200;

/// `suspect_timeout_ms` below this is accepted with a warning: a suspect has this long to
/// refute, and under a second a burst of loss or a pause declares a healthy member down, which
/// moves its users' records for nothing.
pub const MIN_SUSPECT_TIMEOUT_MS: u64 = 1000;

/// Default client capacity of a supernode: 10,000 sessions are about 370 MB of QUIC state and
/// 1.4 GB in all at the measured 140 KiB per client (BENCHMARKS.md), a modest server.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Default client capacity of a mega-supernode: an operator machine sized to absorb the clients
/// of several lost supernodes (about 7 GB at 140 KiB per client).
pub const DEFAULT_MEGA_CAPACITY: usize = 50_000;

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
    /// Most clients at once. Default [`DEFAULT_CAPACITY`] (10,000), [`DEFAULT_MEGA_CAPACITY`]
    /// (50,000) with `mega`; at least 1.
    pub capacity: Option<usize>,
    /// Prometheus `/metrics` and `/healthz`. Default off.
    pub metrics: Option<SocketAddr>,
    /// Client software versions refused with `VersionRejected`. Default none.
    pub refuse_versions: Option<Vec<String>>,
    /// Clients older than this are refused too. Default none.
    pub minimum_version: Option<String>,
    /// Longest lease granted, in seconds. Default 120; at least 1; below
    /// [`MIN_MAX_LEASE_SECS`] (10) accepted with a warning.
    pub max_lease_secs: Option<u64>,
    /// New handshakes per second. Default 1,000; at least 1.
    pub handshakes_per_sec: Option<u32>,
    /// Requests per second over all clients. Default 50,000; at least 1.
    pub requests_per_sec: Option<u32>,
    /// Admission control: refuse handshakes past `handshakes_per_sec`, answer `Busy` past
    /// `capacity` clients and past `requests_per_sec`. Default true. **Never false in a
    /// deployment**: false admits every client and request until the supernode falls over, and
    /// exists only so that `testbed outage --naive` can show what admission control prevents
    /// (accepted with a warning).
    pub admission_control: Option<bool>,
    /// Seconds between announcements to the auth-server. Default 30; at least 1; below
    /// [`MIN_ANNOUNCE_INTERVAL_SECS`] (5) accepted with a warning.
    pub announce_interval_secs: Option<u64>,
    /// Seconds between revocation-list fetches. Default 60; at least 1; below
    /// [`MIN_REVOCATION_POLL_SECS`] (5) accepted with a warning.
    pub revocation_poll_secs: Option<u64>,
    /// Seconds a SIGTERM drain may take before the supernode closes anyway. Default 10; at
    /// least 1.
    pub drain_deadline_secs: Option<u64>,
    /// Owners per user in the overlay index (R). Default 3; between 1 and 7.
    pub replicas: Option<usize>,
    /// Milliseconds between membership probes. Default 1000; at least 1; below
    /// [`MIN_PROBE_PERIOD_MS`] (200) accepted with a warning.
    pub probe_period_ms: Option<u64>,
    /// Milliseconds a probe may take before others probe indirectly. Default 400; at least 1
    /// and below `probe_period_ms`.
    pub probe_rtt_ms: Option<u64>,
    /// Milliseconds a suspect has to refute before it is declared down. Default 3000; at
    /// least 1; below [`MIN_SUSPECT_TIMEOUT_MS`] (1000) accepted with a warning.
    pub suspect_timeout_ms: Option<u64>,
    /// Milliseconds a lookup waits for the owners. Default 1500; at least 1.
    pub lookup_timeout_ms: Option<u64>,
    /// With `standby`: activate when the other members' serving capacity fell by more than
    /// this many per mille within `standby_window_secs`. Default 250; 1 to 999.
    pub standby_drop_permille: Option<u32>,
    /// The window of that drop, in seconds. Default 30; at least 1.
    pub standby_window_secs: Option<u64>,
    /// Activate when the others' utilization reaches this many per mille. Default 900; 1 to
    /// 1000.
    pub standby_critical_permille: Option<u32>,
    /// Utilization below which the overlay counts as calm again. Default 700; below
    /// `standby_critical_permille`.
    pub standby_calm_permille: Option<u32>,
    /// Seconds the overlay must be healthy before an active standby returns. Default 60; at
    /// least 1.
    pub standby_healthy_secs: Option<u64>,
    /// Whether this supernode nominates promotable clients when the overlay needs capacity.
    /// Default true (operator supernodes and megas only; a promoted one never nominates).
    pub nominate: Option<bool>,
    /// Nominate when the overlay's utilization reaches this many per mille. Default 800; 1 to
    /// 1000.
    pub promote_high_water_permille: Option<u32>,
    /// A promoted supernode steps down below this utilization (per mille). Default 400; below
    /// `promote_high_water_permille`.
    pub promote_low_water_permille: Option<u32>,
    /// Also nominate while there are fewer supernodes than one per this many clients. Default
    /// 0 (off).
    pub promote_clients_per_supernode: Option<u32>,
    /// Seconds a client must have been in session here to be nominated. Default 60.
    pub promote_min_session_secs: Option<u64>,
    /// Seconds a promoted supernode serves before it may step down. Default 300.
    pub promote_min_in_role_secs: Option<u64>,
    /// Seconds between two nominations by this supernode. Default 10; at least 1.
    pub promote_cooldown_secs: Option<u64>,
    /// Seconds a nominee has to join the overlay. Default 30; at least 1.
    pub promote_join_deadline_secs: Option<u64>,
    /// Seconds before the same client may be nominated again. Default 600.
    pub promote_renominate_after_secs: Option<u64>,
    /// Largest capacity a promotable client may declare. Default 1000; at least 1.
    pub promote_max_capacity: Option<u32>,
    /// While shedding (requests refused for the budget), presence events wait this many
    /// milliseconds and go out in one batch per user. Default 2000; at least 1.
    pub shed_presence_delay_ms: Option<u64>,
    /// Requests refused (per mille) that count as sustained overload. Default 100; 1 to 1000.
    pub overload_handoff_permille: Option<u32>,
    /// Seconds the overload must last before clients are handed off, and between rounds.
    /// Default 10; at least 1.
    pub overload_handoff_secs: Option<u64>,
    /// Share of clients (per mille) redirected per handoff round. Default 100; 1 to 1000.
    pub overload_handoff_share_permille: Option<u32>,
    /// Relay sessions at once, for clients that cannot punch through their NATs. Default 256;
    /// 0 turns relaying off.
    pub relay_max_sessions: Option<usize>,
    /// Relay sessions one device takes part in at once. Default 4; at least 1.
    pub relay_max_per_client: Option<u32>,
    /// Bytes per second one relay session forwards. Default 1048576 (1 MiB/s); at least 1.
    pub relay_session_bytes_per_sec: Option<u32>,
    /// Bytes per second all relay sessions forward together. Default 16777216 (16 MiB/s).
    pub relay_total_bytes_per_sec: Option<u32>,
    /// Seconds a relay session may stay without a packet. Default 30; at least 1.
    pub relay_idle_secs: Option<u32>,
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
    /// When a standby mega steps in and back.
    pub standby: StandbyConfig,
    /// Promotion of clients and demotion of promoted supernodes.
    pub promotion: crate::promotion::PromotionSettings,
    /// Feature shedding and handoff under overload.
    pub shedding: switchboard_engine::ShedConfig,
    /// The relay's caps.
    pub relay: switchboard_engine::RelayConfig,
    /// Values accepted below their production minimum; logged once at start-up.
    pub warnings: Vec<BelowMinimum>,
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
        let standby = self.standby_policy(source_name)?;
        let promotion = crate::promotion::PromotionSettings::from_file(&self, source_name)?;
        let shedding = crate::shedding::settings(&self, source_name)?;
        let relay = crate::relay::settings(&self, source_name)?;
        let invalid = |key, problem: String| ConfigError::Invalid {
            source_name: source_name.to_owned(),
            key,
            problem,
        };
        let required = |key: &'static str| invalid(key, "is required".to_owned());
        let data_dir = self.data_dir.ok_or_else(|| required("data_dir"))?;
        let auth = self.auth.ok_or_else(|| required("auth"))?;
        let trust =
            switchboard_net::config_file::trust_key(&self.trust.ok_or_else(|| required("trust"))?)
                .map_err(|e| invalid("trust", e))?;
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
        let default_capacity = if mode == Mode::Normal {
            DEFAULT_CAPACITY
        } else {
            DEFAULT_MEGA_CAPACITY
        };
        let capacity = at_least_one(
            self.capacity.unwrap_or(default_capacity),
            "capacity",
            source_name,
        )?;
        let defaults = AdmissionConfig::default();
        let requests_per_sec = at_least_one(
            self.requests_per_sec.unwrap_or(defaults.requests_per_sec),
            "requests_per_sec",
            source_name,
        )?;
        let handshakes_per_sec = at_least_one(
            self.handshakes_per_sec
                .unwrap_or(defaults.handshakes_per_sec),
            "handshakes_per_sec",
            source_name,
        )?;
        let admission = AdmissionConfig {
            capacity,
            handshakes_per_sec,
            handshake_burst: handshakes_per_sec.saturating_mul(2),
            requests_per_sec,
            request_burst: requests_per_sec,
            refresh_reserve: requests_per_sec / 10,
            lookup_reserve: requests_per_sec / 10,
            enforce: self.admission_control.unwrap_or(true),
            ..defaults
        };
        let max_lease = at_least_one(
            self.max_lease_secs.unwrap_or(120),
            "max_lease_secs",
            source_name,
        )?;
        let overlay_defaults = OverlayConfig::default();
        let membership_defaults = MembershipConfig::default();
        let millis = |key, value: Option<u64>, default: Duration| match value {
            None => Ok(default),
            Some(ms) => at_least_one(ms, key, source_name).map(Duration::from_millis),
        };
        let replicas = self.replicas.unwrap_or(overlay_defaults.replicas);
        if replicas == 0 || replicas > 7 {
            return Err(invalid("replicas", "must be between 1 and 7".to_owned()));
        }
        let overlay = OverlayConfig {
            replicas,
            lookup_timeout: millis(
                "lookup_timeout_ms",
                self.lookup_timeout_ms,
                overlay_defaults.lookup_timeout,
            )?,
            max_lease: Duration::from_secs(max_lease),
            membership: MembershipConfig {
                probe_period: millis(
                    "probe_period_ms",
                    self.probe_period_ms,
                    membership_defaults.probe_period,
                )?,
                probe_rtt: millis(
                    "probe_rtt_ms",
                    self.probe_rtt_ms,
                    membership_defaults.probe_rtt,
                )?,
                suspect_to_down_after: millis(
                    "suspect_timeout_ms",
                    self.suspect_timeout_ms,
                    membership_defaults.suspect_to_down_after,
                )?,
                ..membership_defaults
            },
            ..overlay_defaults
        };
        // The membership checks its own timing; refuse a bad one here, naming the key.
        if overlay.membership.probe_rtt >= overlay.membership.probe_period {
            return Err(invalid(
                "probe_rtt_ms",
                "must be below probe_period_ms".to_owned(),
            ));
        }
        let announce_interval = at_least_one(
            self.announce_interval_secs.unwrap_or(30),
            "announce_interval_secs",
            source_name,
        )?;
        let revocation_poll = at_least_one(
            self.revocation_poll_secs.unwrap_or(60),
            "revocation_poll_secs",
            source_name,
        )?;
        let drain_deadline = at_least_one(
            self.drain_deadline_secs.unwrap_or(10),
            "drain_deadline_secs",
            source_name,
        )?;
        let warnings = [
            BelowMinimum::check(
                source_name,
                "max_lease_secs",
                max_lease,
                MIN_MAX_LEASE_SECS,
                "every client refreshes more often than every 3 s",
            ),
            BelowMinimum::check(
                source_name,
                "announce_interval_secs",
                announce_interval,
                MIN_ANNOUNCE_INTERVAL_SECS,
                "announcements load the auth-server",
            ),
            BelowMinimum::check(
                source_name,
                "revocation_poll_secs",
                revocation_poll,
                MIN_REVOCATION_POLL_SECS,
                "revocation fetches load the auth-server",
            ),
            BelowMinimum::check(
                source_name,
                "probe_period_ms",
                millis_of(overlay.membership.probe_period),
                MIN_PROBE_PERIOD_MS,
                "healthy members become suspects on a slow round trip",
            ),
            BelowMinimum::check(
                source_name,
                "suspect_timeout_ms",
                millis_of(overlay.membership.suspect_to_down_after),
                MIN_SUSPECT_TIMEOUT_MS,
                "a pause or a burst of loss declares a healthy member down",
            ),
            BelowMinimum::check(
                source_name,
                "admission_control",
                u64::from(admission.enforce),
                1,
                "every client and request is admitted until the supernode falls over",
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
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
            announce_interval: Duration::from_secs(announce_interval),
            revocation_poll: Duration::from_secs(revocation_poll),
            drain_deadline: Duration::from_secs(drain_deadline),
            standby,
            promotion,
            shedding,
            relay,
            warnings,
        })
    }

    /// The standby policy's keys, checked.
    fn standby_policy(&self, source_name: &str) -> Result<StandbyConfig, ConfigError> {
        let defaults = StandbyConfig::default();
        let invalid = |key, problem: &str| ConfigError::Invalid {
            source_name: source_name.to_owned(),
            key,
            problem: problem.to_owned(),
        };
        let drop_permille = self.standby_drop_permille.unwrap_or(defaults.drop_permille);
        if !(1..=999).contains(&drop_permille) {
            return Err(invalid(
                "standby_drop_permille",
                "must be between 1 and 999",
            ));
        }
        let critical_permille = self
            .standby_critical_permille
            .unwrap_or(defaults.critical_permille);
        if !(1..=1000).contains(&critical_permille) {
            return Err(invalid(
                "standby_critical_permille",
                "must be between 1 and 1000",
            ));
        }
        let calm_permille = self.standby_calm_permille.unwrap_or(defaults.calm_permille);
        if calm_permille >= critical_permille {
            return Err(invalid(
                "standby_calm_permille",
                "must be below standby_critical_permille",
            ));
        }
        let window = at_least_one(
            self.standby_window_secs
                .unwrap_or(defaults.window.as_secs()),
            "standby_window_secs",
            source_name,
        )?;
        let healthy = at_least_one(
            self.standby_healthy_secs
                .unwrap_or(defaults.healthy_for.as_secs()),
            "standby_healthy_secs",
            source_name,
        )?;
        Ok(StandbyConfig {
            drop_permille,
            window: Duration::from_secs(window),
            critical_permille,
            calm_permille,
            healthy_for: Duration::from_secs(healthy),
        })
    }
}

/// `value`, or [`ConfigError::Invalid`] naming `key` if it is zero: a zero rate, period or
/// count would stop the supernode or spin it, and is refused rather than quietly raised.
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

/// Whole milliseconds of `duration` (saturating; configured values came from `u64` millis).
fn millis_of(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
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

    /// The keys every supernode needs, with a valid trust key, so that a test's one bad value
    /// is the only thing wrong.
    fn valid(extra: &str) -> FileConfig {
        let trust = switchboard_proto::SecretKey::from_seed([1; 32]).auth_key();
        toml::from_str(&format!(
            "data_dir = \"/x\"\nauth = \"a:1\"\ntrust = \"{trust}\"\nuser = \"sn\"\n\
             password_file = \"/p\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn the_base_of_these_tests_is_valid_and_warns_of_nothing() {
        let config = valid("").validate("t").unwrap();
        assert_eq!(config.mode, Mode::Normal);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn standby_without_mega_is_refused() {
        let error = valid("standby = true\n").validate("t").unwrap_err();
        assert!(
            matches!(error, ConfigError::Invalid { key: "standby", .. }),
            "{error}"
        );
        assert!(error.to_string().contains("`standby`"), "{error}");
        assert_eq!(
            valid("standby = true\nmega = true\n")
                .validate("t")
                .unwrap()
                .mode,
            Mode::MegaStandby
        );
    }

    #[test]
    fn a_calm_mark_not_below_the_critical_one_or_a_drop_of_everything_is_refused() {
        for (line, key) in [
            (
                "standby_critical_permille = 800\nstandby_calm_permille = 800\n",
                "standby_calm_permille",
            ),
            ("standby_drop_permille = 1000\n", "standby_drop_permille"),
            (
                "standby_critical_permille = 1001\n",
                "standby_critical_permille",
            ),
        ] {
            let error = valid(line).validate("bad.toml").unwrap_err();
            assert!(
                matches!(&error, ConfigError::Invalid { key: k, .. } if *k == key),
                "{line}: {error}"
            );
        }
        let config = valid("standby_healthy_secs = 3\n")
            .validate("ok.toml")
            .unwrap();
        assert_eq!(config.standby.healthy_for, Duration::from_secs(3));
    }

    #[test]
    fn a_mega_defaults_to_a_larger_capacity_than_a_supernode() {
        let normal = valid("").validate("ok.toml").unwrap();
        assert_eq!(normal.admission.capacity, DEFAULT_CAPACITY);
        let mega = valid("mega = true\nstandby = true\n")
            .validate("ok.toml")
            .unwrap();
        assert_eq!(mega.admission.capacity, DEFAULT_MEGA_CAPACITY);
        let chosen = valid("mega = true\ncapacity = 7\n")
            .validate("ok.toml")
            .unwrap();
        assert_eq!(chosen.admission.capacity, 7);
    }

    #[test]
    fn zero_is_refused_naming_the_key_for_every_count_rate_and_period() {
        let keys = [
            "capacity",
            "requests_per_sec",
            "handshakes_per_sec",
            "max_lease_secs",
            "announce_interval_secs",
            "revocation_poll_secs",
            "drain_deadline_secs",
            "replicas",
            "probe_period_ms",
            "probe_rtt_ms",
            "suspect_timeout_ms",
            "lookup_timeout_ms",
            "standby_drop_permille",
            "standby_window_secs",
            "standby_critical_permille",
            "standby_healthy_secs",
        ];
        let mut wrong = Vec::new();
        for key in keys {
            match valid(&format!("{key} = 0\n")).validate("bad.toml") {
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
    fn a_probe_timeout_not_below_the_probe_period_is_refused() {
        let error = valid("probe_period_ms = 500\nprobe_rtt_ms = 500\n")
            .validate("t")
            .unwrap_err();
        assert!(
            matches!(
                error,
                ConfigError::Invalid {
                    key: "probe_rtt_ms",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_value_below_its_production_minimum_is_accepted_with_a_warning_naming_the_key() {
        let cases = [
            ("max_lease_secs", MIN_MAX_LEASE_SECS),
            ("announce_interval_secs", MIN_ANNOUNCE_INTERVAL_SECS),
            ("revocation_poll_secs", MIN_REVOCATION_POLL_SECS),
            ("probe_period_ms", MIN_PROBE_PERIOD_MS),
            ("suspect_timeout_ms", MIN_SUSPECT_TIMEOUT_MS),
        ];
        let mut wrong = Vec::new();
        for (key, minimum) in cases {
            // probe_rtt_ms must stay below the period.
            let below = format!("{key} = {}\nprobe_rtt_ms = 1\n", minimum - 1);
            match valid(&below).validate("t.toml") {
                Err(e) => wrong.push(format!("{key} = {} refused: {e}", minimum - 1)),
                Ok(config) => {
                    let keys: Vec<_> = config.warnings.iter().map(|w| w.key).collect();
                    let text = config.warnings.first().map(ToString::to_string);
                    if keys != [key] || !text.as_deref().is_some_and(|t| t.contains(key)) {
                        wrong.push(format!("{key} below {minimum} warned {keys:?} {text:?}"));
                    }
                }
            }
            let at = format!("{key} = {minimum}\nprobe_rtt_ms = 1\n");
            match valid(&at).validate("t.toml") {
                Ok(config) if config.warnings.is_empty() => {}
                other => wrong.push(format!("{key} = {minimum} gave {other:?}")),
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn the_example_config_warns_of_nothing() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/supernode.toml");
        let config = FileConfig::load(&path)
            .unwrap()
            .validate("example")
            .unwrap();
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }
}
