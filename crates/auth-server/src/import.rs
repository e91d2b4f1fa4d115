//! `auth-server user import FILE`: the accounts of a deployment, created in one idempotent
//! step (a compose file's init service runs it on every start).
//!
//! ```toml
//! [[account]]
//! name = "sn1"
//! role = "supernode"
//! password_file = "secrets/sn1.password"   # relative to this file
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use switchboard_proto::UnixTime;

use crate::commands::{read_password, username, Failure};
use crate::password::Hasher;
use crate::store::Store;

/// Accounts one file may list: a deployment's service accounts and a few test users, not a
/// user base (those sign up or are added one by one).
pub const MAX_IMPORTED_ACCOUNTS: usize = 1_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    account: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(default = "user_role")]
    role: String,
    password_file: PathBuf,
}

fn user_role() -> String {
    "user".to_owned()
}

/// Imports `file` into `data_dir` (initialised first when it has no key); returns the names
/// added and those that existed already. Nothing is written unless every entry is valid.
pub(crate) fn import(
    file: &Path,
    data_dir: &Path,
    now: UnixTime,
) -> Result<(Vec<String>, Vec<String>), Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    let parsed: File =
        toml::from_str(&text).map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    if parsed.account.len() > MAX_IMPORTED_ACCOUNTS {
        return Err(Failure::usage(format!(
            "{}: {} accounts, at most {MAX_IMPORTED_ACCOUNTS} per file",
            file.display(),
            parsed.account.len()
        )));
    }
    let base = file.parent().unwrap_or(Path::new("."));
    let mut entries = Vec::new();
    for entry in &parsed.account {
        let user = username(&entry.name)?;
        let role = crate::parse_role(&entry.role)
            .map_err(|e| Failure::usage(format!("{}: {}: {e}", file.display(), entry.name)))?;
        let password = read_password(Some(&base.join(&entry.password_file)))?;
        entries.push((user, role, password));
    }
    if !data_dir.join(crate::KEY_FILE).exists() {
        crate::commands::initialise(data_dir)?;
    }
    let store = Store::open(data_dir).map_err(Failure::failed)?;
    let hasher = Hasher::new(Default::default()).map_err(Failure::failed)?;
    let (mut added, mut kept) = (Vec::new(), Vec::new());
    for (user, role, password) in entries {
        if store.get(&user).map_err(Failure::failed)?.is_some() {
            kept.push(user.to_string());
            continue;
        }
        let hash = hasher.hash(&password).map_err(Failure::failed)?;
        store
            .add(&user, &hash, role, now)
            .map_err(Failure::failed)?;
        added.push(user.to_string());
    }
    Ok((added, kept))
}
