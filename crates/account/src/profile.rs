//! The client's profile directory: everything a client keeps between runs.
//!
//! | file | what | mode |
//! | --- | --- | --- |
//! | `node.key` | the node key (PKCS#8 DER), made on first login | 0600 |
//! | `profile.toml` | username, auth-server address, trusted auth key | 0600 |
//! | `ticket` | the current ticket (postcard) | 0600 |
//! | `hosts.toml` | the host cache: supernodes with load hints, seeded from the bootstrap list | 0600 |
//! | `home` | the node id of the supernode a running `client online` is homed on | 0600 |
//!
//! Every file is written atomically (temporary file, then rename), so a crash leaves the old
//! version or the new one, never half of either.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use switchboard_net::keyfile::{self, KeyFileError};
use switchboard_proto::codec;
use switchboard_proto::limits::FRAME_HEADER_LEN;
use switchboard_proto::messages::{BootstrapEntry, ServiceMode};
use switchboard_proto::{AuthKey, NodeId, PeerAddr, SecretKey, Ticket};

/// Most supernodes the host cache keeps (DESIGN.md section 6: up to 200, like Skype's).
pub const MAX_HOSTS: usize = 200;

const KEY_FILE: &str = "node.key";
const PROFILE_FILE: &str = "profile.toml";
const TICKET_FILE: &str = "ticket";
const HOSTS_FILE: &str = "hosts.toml";
const HOME_FILE: &str = "home";

/// A profile file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A key or private file.
    #[error(transparent)]
    File(#[from] KeyFileError),
    /// A file's contents.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// Which file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The directory could not be made.
    #[error("{}: {source}", path.display())]
    Directory {
        /// Which directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not logged in yet.
    #[error("no profile in {}; run `client login` first", .0.display())]
    NotLoggedIn(PathBuf),
}

/// `profile.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The account.
    pub user: String,
    /// The auth-server's address, as given to `client login`.
    pub auth: String,
    /// The auth-server's public key (hex).
    pub trust: String,
}

/// One entry of the host cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// The supernode's node id (hex).
    pub node: String,
    /// Its address.
    pub addr: SocketAddr,
    /// `normal` or `mega`.
    pub mode: String,
    /// Its load when last heard of, per mille.
    pub load_permille: u16,
    /// When this client last got service from it (Unix seconds), if ever.
    #[serde(default)]
    pub last_success: Option<u64>,
    /// When a dial to it or a session with it last failed (Unix seconds), if ever: it is
    /// tried after the others for a while (`switchboard_engine::session::HostCache::order`).
    #[serde(default)]
    pub last_failure: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostsFile {
    #[serde(default)]
    host: Vec<Host>,
}

/// A profile directory.
#[derive(Debug, Clone)]
pub struct Profile {
    dir: PathBuf,
}

impl Profile {
    /// The profile at `dir` (nothing is read yet).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the directory (mode 0700) if needed.
    pub fn create(&self) -> Result<(), ProfileError> {
        keyfile::private_dir(&self.dir).map_err(|source| ProfileError::Directory {
            path: self.dir.clone(),
            source,
        })
    }

    /// The node key, made on first use.
    pub fn node_key(&self) -> Result<SecretKey, ProfileError> {
        Ok(keyfile::load_or_create(&self.dir.join(KEY_FILE))?)
    }

    /// Stores `key` as this profile's node key (a promoted role's profile takes its client's
    /// key, so that it serves as the same node).
    pub fn save_node_key(&self, key: &SecretKey) -> Result<(), ProfileError> {
        let path = self.dir.join(KEY_FILE);
        let der = key.to_pkcs8_der().map_err(|e| ProfileError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(keyfile::write_private(&path, &der)?)
    }

    /// Forgets the ticket (a promoted role that stepped down).
    pub fn forget_ticket(&self) -> Result<(), ProfileError> {
        match std::fs::remove_file(self.dir.join(TICKET_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ProfileError::Directory {
                path: self.dir.clone(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Saves `profile.toml`.
    pub fn save_settings(&self, settings: &Settings) -> Result<(), ProfileError> {
        let path = self.dir.join(PROFILE_FILE);
        let text = toml::to_string(settings).map_err(|e| ProfileError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(keyfile::write_private(&path, text.as_bytes())?)
    }

    /// Loads `profile.toml`.
    pub fn settings(&self) -> Result<Settings, ProfileError> {
        let path = self.dir.join(PROFILE_FILE);
        let bytes = keyfile::read_private(&path).map_err(|e| match e {
            KeyFileError::Missing(_) => ProfileError::NotLoggedIn(self.dir.clone()),
            other => other.into(),
        })?;
        let text = String::from_utf8(bytes).map_err(|e| ProfileError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| ProfileError::Invalid {
            path,
            reason: e.to_string(),
        })
    }

    /// The trusted auth key of `profile.toml`.
    pub fn trust(&self) -> Result<AuthKey, ProfileError> {
        let settings = self.settings()?;
        settings.trust.parse().map_err(|e| ProfileError::Invalid {
            path: self.dir.join(PROFILE_FILE),
            reason: format!("trust: {e}"),
        })
    }

    /// Saves the ticket.
    pub fn save_ticket(&self, ticket: &Ticket) -> Result<(), ProfileError> {
        let path = self.dir.join(TICKET_FILE);
        let frame = codec::encode_frame(ticket).map_err(|e| ProfileError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let payload = frame.get(FRAME_HEADER_LEN..).unwrap_or_default();
        Ok(keyfile::write_private(&path, payload)?)
    }

    /// Loads the ticket.
    pub fn ticket(&self) -> Result<Ticket, ProfileError> {
        let path = self.dir.join(TICKET_FILE);
        let bytes = keyfile::read_private(&path).map_err(|e| match e {
            KeyFileError::Missing(_) => ProfileError::NotLoggedIn(self.dir.clone()),
            other => other.into(),
        })?;
        codec::decode_payload(&bytes).map_err(|e| ProfileError::Invalid {
            path,
            reason: e.to_string(),
        })
    }

    /// The host cache (empty if there is none yet).
    pub fn hosts(&self) -> Result<Vec<Host>, ProfileError> {
        let path = self.dir.join(HOSTS_FILE);
        let bytes = match keyfile::read_private(&path) {
            Ok(bytes) => bytes,
            Err(KeyFileError::Missing(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let text = String::from_utf8(bytes).map_err(|e| ProfileError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let file: HostsFile = toml::from_str(&text).map_err(|e| ProfileError::Invalid {
            path,
            reason: e.to_string(),
        })?;
        Ok(file.host)
    }

    /// The supernode a running `client online` of this profile is homed on, if one is (the
    /// file may outlive a killed session: a dead home is then found failed in the host cache).
    pub fn home(&self) -> Option<NodeId> {
        let bytes = keyfile::read_private(&self.dir.join(HOME_FILE)).ok()?;
        std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
    }

    /// Records (or, with `None`, clears) the supernode this profile's `client online` is
    /// homed on, so that one-shot commands from the same profile go there first.
    pub fn save_home(&self, home: Option<NodeId>) -> Result<(), ProfileError> {
        let path = self.dir.join(HOME_FILE);
        match home {
            Some(node) => Ok(keyfile::write_private(&path, node.to_string().as_bytes())?),
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(ProfileError::Directory { path, source: e })
                }
                _ => Ok(()),
            },
        }
    }

    /// Saves the host cache, keeping at most [`MAX_HOSTS`] entries.
    pub fn save_hosts(&self, mut hosts: Vec<Host>) -> Result<(), ProfileError> {
        hosts.truncate(MAX_HOSTS);
        let path = self.dir.join(HOSTS_FILE);
        let text =
            toml::to_string(&HostsFile { host: hosts }).map_err(|e| ProfileError::Invalid {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Ok(keyfile::write_private(&path, text.as_bytes())?)
    }

    /// Merges a bootstrap list into the host cache: new supernodes are added, known ones get
    /// the fresh load hint and keep their history.
    pub fn merge_bootstrap(&self, bootstrap: &[BootstrapEntry]) -> Result<usize, ProfileError> {
        let mut hosts = self.hosts()?;
        for entry in bootstrap {
            let node = entry.peer.node.to_string();
            let mode = match entry.mode {
                ServiceMode::Normal => "normal",
                ServiceMode::Mega | ServiceMode::MegaStandby => "mega",
            };
            match hosts.iter_mut().find(|h| h.node == node) {
                Some(host) => {
                    host.addr = entry.peer.addr;
                    host.load_permille = entry.load_permille;
                    host.mode = mode.to_owned();
                }
                None => hosts.push(Host {
                    node,
                    addr: entry.peer.addr,
                    mode: mode.to_owned(),
                    load_permille: entry.load_permille,
                    last_success: None,
                    last_failure: None,
                }),
            }
        }
        let count = hosts.len().min(MAX_HOSTS);
        self.save_hosts(hosts)?;
        Ok(count)
    }
}

impl Host {
    /// An entry for a supernode known only by name and address (one a `Busy` or `Redirect`
    /// named, or a peer's home): average load, never served this client.
    pub fn named(peer: PeerAddr) -> Self {
        Self {
            node: peer.node.to_string(),
            addr: peer.addr,
            mode: "normal".to_owned(),
            load_permille: 500,
            last_success: None,
            last_failure: None,
        }
    }

    /// The entry as an authenticated dial target, if its node id parses.
    pub fn peer(&self) -> Option<PeerAddr> {
        let node: NodeId = self.node.parse().ok()?;
        Some(PeerAddr {
            node,
            addr: self.addr,
        })
    }
}
