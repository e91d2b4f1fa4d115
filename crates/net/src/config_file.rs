//! Reading a daemon's or the client's TOML configuration file. Each program defines what the
//! file holds (with `deny_unknown_fields`); this reads it and names the file in every error,
//! and toml's own message names the key and the line.

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
