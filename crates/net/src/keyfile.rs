//! Secret files on disk: Ed25519 keys (the auth-server's signing key, node keys) as PKCS#8 DER,
//! and other private files (tickets, profiles), all created with mode 0600 and written
//! atomically (a temporary file renamed into place), so a crash never leaves half a file.
//! A key file that others can read is refused.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;
use switchboard_proto::SecretKey;

/// The key file could not be created or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file exists already (`init` never overwrites a key: tickets signed by it would die).
    #[error("{} already exists; refusing to replace a key", .0.display())]
    Exists(PathBuf),
    /// No key yet.
    #[error("{} not found", .0.display())]
    Missing(PathBuf),
    /// IO failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// Which file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not a key.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// Which file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Group or others can read the key.
    #[error("{} is readable by others (mode {mode:o}); run `chmod 600` on it", path.display())]
    Exposed {
        /// Which file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
}

/// Writes `bytes` to `path` with mode 0600, atomically and durably: a temporary file in the
/// same directory, synced, then renamed over `path`.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    // A temporary name of our own, so that two processes writing the same file (an online
    // client and a one-shot command on one profile) never rename each other's halves.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".tmp.{}.{unique}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable.
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// Creates a new key at `path` (mode 0600) from fresh OS randomness; never replaces a key.
pub fn create(path: &Path) -> Result<SecretKey, KeyFileError> {
    if path.exists() {
        return Err(KeyFileError::Exists(path.to_path_buf()));
    }
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let key = SecretKey::from_seed(seed);
    let der = key.to_pkcs8_der().map_err(|e| KeyFileError::Invalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    write_private(path, &der)?;
    Ok(key)
}

/// Reads a private file, refusing one that group or others can read.
pub fn read_private(path: &Path) -> Result<Vec<u8>, KeyFileError> {
    let metadata = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            KeyFileError::Missing(path.to_path_buf())
        } else {
            KeyFileError::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    std::fs::read(path).map_err(|source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads the key at `path`.
pub fn load(path: &Path) -> Result<SecretKey, KeyFileError> {
    let der = read_private(path)?;
    SecretKey::from_pkcs8_der(&der).map_err(|e| KeyFileError::Invalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Loads the key at `path`, creating it first if there is none.
pub fn load_or_create(path: &Path) -> Result<SecretKey, KeyFileError> {
    match load(path) {
        Err(KeyFileError::Missing(_)) => create(path),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_loads_back_and_is_private() {
        let dir = std::env::temp_dir().join(format!("switchboard-keyfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.key");
        let key = create(&path).unwrap();
        assert_eq!(load(&path).unwrap().node_id(), key.node_id());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(create(&path), Err(KeyFileError::Exists(_))));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(load(&path), Err(KeyFileError::Exposed { .. })));
        assert!(matches!(
            load(&dir.join("none")),
            Err(KeyFileError::Missing(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
