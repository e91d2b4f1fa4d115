//! The client's configuration file (`--config FILE`): defaults for the options every command
//! would otherwise need on its command line. Unknown keys are rejected; flags override.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `client.toml`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The profile directory (node key, ticket, host cache).
    pub profile: Option<PathBuf>,
    /// The auth-server (`host:port`), for `login` and `signup`.
    pub auth: Option<String>,
    /// The auth-server's public key (hex), for `login` and `signup`.
    pub trust: Option<String>,
    /// The account, for `login` and `signup`.
    pub user: Option<String>,
    /// The UDP address `online` listens on for direct messages (default `0.0.0.0:0`).
    pub listen: Option<String>,
}

/// The configuration file is unusable (exit code 2).
pub use switchboard_net::config_file::ConfigFileError as ConfigError;

impl FileConfig {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        switchboard_net::config_file::load(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/client.toml");
        let config = FileConfig::load(&path).unwrap();
        assert_eq!(config.user.as_deref(), Some("alice"));
        assert!(config
            .trust
            .unwrap()
            .parse::<switchboard_proto::AuthKey>()
            .is_ok());
    }

    #[test]
    fn an_unknown_key_is_named() {
        let error = toml::from_str::<FileConfig>("profil = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("profil"), "{error}");
    }
}
