//! Reading a daemon's or the client's TOML configuration file. Each program defines what the
//! file holds (with `deny_unknown_fields`); this reads it and names the file in every error,
//! and toml's own message names the key and the line. [`BelowMinimum`] is what the daemons
//! accept but warn of at start-up.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// The configuration file could not be used (the programs exit 2 on it).
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this program.
    #[error("{}: {message}", path.display())]
    Parse {
        /// Which file.
        path: PathBuf,
        /// toml's description (names the key and the line).
        message: String,
    },
}

/// Reads and parses the TOML file at `path`.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigFileError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// A value the program accepts but that is below the minimum meant for production: the
/// end-to-end tests run with such values (1 s leases and intervals) to finish in seconds, and a
/// production network would pay for them in load or false alarms. The daemons log each one once
/// at start-up, with `tracing::warn!`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BelowMinimum {
    /// The file, or "command line".
    pub source_name: String,
    /// Which key.
    pub key: &'static str,
    /// The value given.
    pub value: u64,
    /// The documented minimum.
    pub minimum: u64,
    /// What a value below it costs.
    pub reason: &'static str,
}

impl BelowMinimum {
    /// `Some` when `value` is below `minimum`.
    pub fn check(
        source_name: &str,
        key: &'static str,
        value: u64,
        minimum: u64,
        reason: &'static str,
    ) -> Option<Self> {
        (value < minimum).then(|| Self {
            source_name: source_name.to_owned(),
            key,
            value,
            minimum,
            reason,
        })
    }
}

impl std::fmt::Display for BelowMinimum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: `{}` = {} is below the production minimum of {} ({}); accepted, as for a test",
            self.source_name, self.key, self.value, self.minimum, self.reason
        )
    }
}

/// The auth-server's public key from a `trust` value: 64 hex digits, or `@PATH` for a file
/// whose first line holds them (the `auth.pub` that `auth-server init` writes; a container
/// reads it from the auth-server's volume mounted read-only).
pub fn trust_key(value: &str) -> Result<switchboard_proto::AuthKey, String> {
    let text = match value.strip_prefix('@') {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
            text.lines().next().unwrap_or_default().trim().to_owned()
        }
        None => value.trim().to_owned(),
    };
    text.parse().map_err(|e| format!("{e}"))
}

#[cfg(test)]
mod trust_tests {
    use super::*;

    #[test]
    fn a_trust_key_is_read_inline_or_from_a_file_named_with_an_at_sign() {
        let key = switchboard_proto::SecretKey::from_seed([3; 32]).auth_key();
        assert_eq!(trust_key(&key.to_string()), Ok(key));
        let dir = std::env::temp_dir().join(format!("sb-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("auth.pub");
        std::fs::write(&file, format!("{key}\n")).unwrap();
        assert_eq!(trust_key(&format!("@{}", file.display())), Ok(key));
        assert!(trust_key("@/nonexistent/auth.pub")
            .unwrap_err()
            .contains("/nonexistent/auth.pub"));
        assert!(trust_key("not hex").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
