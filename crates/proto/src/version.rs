//! Version negotiation: the `Hello` both sides send first on every connection.
//!
//! Two numbers travel: the *protocol* version range (what wire format each side speaks) and the
//! *software* version (which build it is). The first is negotiated; the second lets a supernode
//! refuse a known-bad build with `VersionRejected` (the 2010 lesson: one client version took
//! down the network, and there was no way to keep it out).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The protocol version this code speaks. Bumped only for incompatible wire changes.
pub const PROTOCOL_VERSION: u16 = 1;

/// The ALPN of the directory protocol (clients and supernodes, supernodes among themselves).
pub const ALPN_DIRECTORY: &[u8] = b"switchboard/1";

/// The ALPN of the auth protocol (login, ticket refresh, announcements, revocations).
pub const ALPN_AUTH: &[u8] = b"switchboard-auth/1";

/// The ALPN of direct client-to-client connections (`client send`).
pub const ALPN_DIRECT: &[u8] = b"switchboard-direct/1";

/// An inclusive range of protocol versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRange {
    /// Oldest version spoken.
    pub min: u16,
    /// Newest version spoken.
    pub max: u16,
}

impl VersionRange {
    /// What this build speaks.
    pub const CURRENT: Self = Self {
        min: PROTOCOL_VERSION,
        max: PROTOCOL_VERSION,
    };
}

/// A build's version, `major.minor.patch`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
pub struct SoftwareVersion {
    /// Incompatible changes.
    pub major: u16,
    /// Features.
    pub minor: u16,
    /// Fixes.
    pub patch: u16,
}

impl fmt::Display for SoftwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Not a `major.minor.patch` version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a version of the form MAJOR.MINOR.PATCH")]
pub struct ParseVersionError(pub String);

impl FromStr for SoftwareVersion {
    type Err = ParseVersionError;

    fn from_str(text: &str) -> Result<Self, ParseVersionError> {
        let bad = || ParseVersionError(text.to_owned());
        let mut parts = text.trim().split('.').map(str::parse::<u16>);
        let mut next = || parts.next().ok_or_else(bad)?.map_err(|_| bad());
        let version = Self {
            major: next()?,
            minor: next()?,
            patch: next()?,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(version)
    }
}

/// The first message on every connection, from the side that dialed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol versions the sender speaks.
    pub protocol: VersionRange,
    /// The sender's build.
    pub software: SoftwareVersion,
}

/// The answer to a [`Hello`]: the version both will speak, and the answering build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The chosen protocol version.
    pub protocol: u16,
    /// The answering build.
    pub software: SoftwareVersion,
}

/// No protocol version in common.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no common protocol version: we speak {ours:?}, the peer {theirs:?}")]
pub struct NoCommonVersion {
    /// Our range.
    pub ours: VersionRange,
    /// Theirs.
    pub theirs: VersionRange,
}

/// The highest version both ranges contain.
pub fn negotiate(ours: VersionRange, theirs: VersionRange) -> Result<u16, NoCommonVersion> {
    let high = ours.max.min(theirs.max);
    let low = ours.min.max(theirs.min);
    if low > high || ours.min > ours.max || theirs.min > theirs.max {
        return Err(NoCommonVersion { ours, theirs });
    }
    Ok(high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_picks_the_highest_common_version() {
        let a = VersionRange { min: 1, max: 3 };
        let b = VersionRange { min: 2, max: 5 };
        assert_eq!(negotiate(a, b), Ok(3));
        assert_eq!(negotiate(b, a), Ok(3));
        let c = VersionRange { min: 4, max: 5 };
        assert!(negotiate(a, c).is_err());
        let inverted = VersionRange { min: 3, max: 1 };
        assert!(negotiate(inverted, a).is_err());
    }

    #[test]
    fn software_versions_parse_and_order() {
        let v: SoftwareVersion = "5.0.152".parse().unwrap();
        assert_eq!(v.to_string(), "5.0.152");
        assert!(v < "5.1.0".parse().unwrap());
        assert!("5.0".parse::<SoftwareVersion>().is_err());
        assert!("5.0.1.2".parse::<SoftwareVersion>().is_err());
        assert!("a.b.c".parse::<SoftwareVersion>().is_err());
    }
}
