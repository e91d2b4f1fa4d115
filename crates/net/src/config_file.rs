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
