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
    let temporary = write_temporary(path, bytes)?;
    std::fs::rename(&temporary, path).map_err(|source| {
        let _ = std::fs::remove_file(&temporary);
        KeyFileError::Io {
            path: path.to_path_buf(),
            source,
        }
    })?;
    sync_parent(path);
    Ok(())
}

/// Like [`write_private`], but never replaces an existing `path`, even one created a moment
/// ago by another process: the file is linked into place, which fails if the name is taken
/// (a check followed by a rename would leave a window).
pub fn write_new_private(path: &Path, bytes: &[u8]) -> Result<(), KeyFileError> {
    let temporary = write_temporary(path, bytes)?;
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            sync_parent(path);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(KeyFileError::Exists(path.to_path_buf()))
        }
        Err(source) => Err(KeyFileError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Numbers the temporary files of this process.
static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `bytes` in a new, synced temporary file beside `path` (mode 0600). The name is created
/// exclusively (`O_CREAT | O_EXCL`): a file or symlink already there, planted by someone who
/// can write to the directory and guessed the name, makes this fail instead of writing a
/// secret through it.
fn write_temporary(path: &Path, bytes: &[u8]) -> Result<PathBuf, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    // A temporary name of our own, so that two processes writing the same file (an online
    // client and a one-shot command on one profile) never rename each other's halves.
    let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".tmp.{}.{unique}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(io)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(io(e));
    }
    Ok(temporary)
}

/// Makes a rename or link in `path`'s directory durable.
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
}

/// Creates directory `dir` (and its parents) for private files, and makes it mode 0700 even
/// if it existed with a wider mode: files in it are private, and so are their names. A shared
/// directory (sticky bit, such as `/tmp`) is refused rather than closed to everyone else.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o1000 != 0 {
        return Err(std::io::Error::other(
            "a shared directory (sticky bit); give this program a directory of its own",
        ));
    }
    if mode & 0o777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
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
    write_new_private(path, &der)?;
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

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("switchboard-keyfile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_symlink_planted_at_the_temporary_name_gets_no_secret_written_through_it() {
        let dir = scratch("symlink");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"untouched").unwrap();
        let path = dir.join("ticket");
        // The attacker guesses the next temporary name and plants a link there.
        let next = COUNTER.load(std::sync::atomic::Ordering::Relaxed);
        let planted = dir.join(format!("ticket.tmp.{}.{next}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        assert!(write_private(&path, b"secret").is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_new_private_file_never_replaces_one_that_exists() {
        let dir = scratch("new");
        let path = dir.join("auth.key");
        std::fs::write(&path, b"the real key").unwrap();
        assert!(matches!(
            write_new_private(&path, b"another"),
            Err(KeyFileError::Exists(_))
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"the real key");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_private_directory_that_existed_with_a_wider_mode_becomes_0700() {
        let dir = scratch("dir").join("data");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    }

    #[test]
    fn a_shared_sticky_directory_is_refused_not_closed() {
        let dir = scratch("sticky").join("shared");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(private_dir(&dir).is_err());
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o1777);
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    }

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
