//! Identifiers and small value types: keys, usernames, roles, times and addresses.
//!
//! Every type here validates on construction and on decode, so a value that exists is valid.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::limits::MAX_USERNAME_LEN;

/// Why a textual key could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseKeyError {
    /// Not 64 hexadecimal digits.
    #[error("expected 64 hexadecimal digits, got {len} characters")]
    BadLength {
        /// How many characters were given.
        len: usize,
    },
    /// A character outside `0-9a-fA-F`.
    #[error("not a hexadecimal digit: {0:?}")]
    BadDigit(char),
    /// The bytes are not a valid Ed25519 public key (not a curve point).
    #[error("not a valid Ed25519 public key")]
    NotOnCurve,
}

/// Lowercase hexadecimal of `bytes`. Written here because it is eight lines and the only
/// encoding keys need for humans.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn parse_hex32(text: &str) -> Result<[u8; 32], ParseKeyError> {
    let text = text.trim();
    if text.len() != 64 {
        return Err(ParseKeyError::BadLength {
            len: text.chars().count(),
        });
    }
    let mut out = [0u8; 32];
    let mut digits = text.chars();
    for byte in &mut out {
        let mut value = 0u8;
        for _ in 0..2 {
            let c = digits.next().ok_or(ParseKeyError::BadLength { len: 0 })?;
            let nibble = c.to_digit(16).ok_or(ParseKeyError::BadDigit(c))?;
            value = (value << 4) | u8::try_from(nibble).map_err(|_| ParseKeyError::BadDigit(c))?;
        }
        *byte = value;
    }
    Ok(out)
}

macro_rules! public_key_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps raw key bytes. Whether they are a curve point is checked when the key is
            /// used to verify ([`Self::verifying_key`]), never assumed.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The raw key bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// The key as an Ed25519 verifying key, or an error if the bytes are not a point.
            pub fn verifying_key(&self) -> Result<ed25519_dalek::VerifyingKey, ParseKeyError> {
                ed25519_dalek::VerifyingKey::from_bytes(&self.0)
                    .map_err(|_| ParseKeyError::NotOnCurve)
            }

            /// The first 8 hex digits, for logs.
            pub fn short(&self) -> String {
                to_hex(self.0.get(..4).unwrap_or_default())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&to_hex(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl FromStr for $name {
            type Err = ParseKeyError;

            /// Parses 64 hex digits and checks that they name a valid Ed25519 key.
            fn from_str(text: &str) -> Result<Self, ParseKeyError> {
                let key = Self(parse_hex32(text)?);
                key.verifying_key()?;
                Ok(key)
            }
        }
    };
}

public_key_type!(
    /// A node's identity: the Ed25519 public key of its node key. Its TLS certificate carries
    /// the same key, and its ticket names it.
    NodeId
);

public_key_type!(
    /// The auth-server's Ed25519 public key: the trust anchor every node is configured with
    /// (`--trust PUBKEY`). Kept apart from [`NodeId`] so that one is never used for the other.
    AuthKey
);

/// An Ed25519 signature (64 bytes), encoded as a fixed-size tuple (no length prefix).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Signature({}…)",
            to_hex(self.0.get(..4).unwrap_or_default())
        )
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(64)?;
        for byte in &self.0 {
            tuple.serialize_element(byte)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SigVisitor;

        impl<'de> Visitor<'de> for SigVisitor {
            type Value = Signature;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Signature, A::Error> {
                let mut out = [0u8; 64];
                for (i, byte) in out.iter_mut().enumerate() {
                    *byte = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature(out))
            }
        }

        deserializer.deserialize_tuple(64, SigVisitor)
    }
}

/// Why a username is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Empty.
    #[error("a username cannot be empty")]
    Empty,
    /// Over [`MAX_USERNAME_LEN`] characters.
    #[error("a username has at most {MAX_USERNAME_LEN} characters, this one has {0}")]
    TooLong(usize),
    /// A character outside the alphabet.
    #[error("{0:?} is not allowed in a username (use a-z, 0-9, '.', '_' and '-')")]
    BadCharacter(char),
    /// Starts with punctuation.
    #[error("a username must start with a letter or a digit")]
    BadStart,
}

/// A username: 1 to 32 characters of `a-z`, `0-9`, `.`, `_`, `-`, starting with a letter or a
/// digit.
///
/// Lowercase only, so that `Alice` and `alice` can never be two accounts (a classic
/// impersonation trick); ASCII only, so that no two usernames look alike in another script.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Username(String);

impl Username {
    /// Validates `name` against the alphabet and length.
    pub fn new(name: &str) -> Result<Self, UsernameError> {
        Self::validate(name)?;
        Ok(Self(name.to_owned()))
    }

    fn validate(name: &str) -> Result<(), UsernameError> {
        let first = name.chars().next().ok_or(UsernameError::Empty)?;
        if name.len() > MAX_USERNAME_LEN {
            return Err(UsernameError::TooLong(name.chars().count()));
        }
        if let Some(bad) = name.chars().find(|c| !Self::allowed(*c)) {
            return Err(UsernameError::BadCharacter(bad));
        }
        if !first.is_ascii_alphanumeric() {
            return Err(UsernameError::BadStart);
        }
        Ok(())
    }

    fn allowed(c: char) -> bool {
        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

impl FromStr for Username {
    type Err = UsernameError;

    fn from_str(text: &str) -> Result<Self, UsernameError> {
        Self::new(text)
    }
}

impl<'de> Deserialize<'de> for Username {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <&str>::deserialize(deserializer)?;
        Self::new(text).map_err(de::Error::custom)
    }
}

/// What an account may do (DESIGN.md section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// An ordinary user. Never serves: a promoted client gets a `promoted` ticket for that.
    User,
    /// An operator-run supernode.
    Supernode,
    /// An operator-run mega-supernode (only these may run `--mega`).
    Mega,
    /// An administrator (account management).
    Admin,
    /// A client promoted into a supernode: a ticket role only, never an account's. The
    /// auth-server issues it for the client's own node key on a nomination signed by the
    /// client's home supernode ([`crate::nomination`]); it serves as an ordinary supernode,
    /// and it is the one supernode role that the promotion policy may demote. Distinct from
    /// `supernode` so that every node can tell an operator's supernode from a promoted one.
    Promoted,
}

impl Role {
    /// Every role, in order.
    pub const ALL: [Self; 5] = [
        Self::User,
        Self::Supernode,
        Self::Mega,
        Self::Admin,
        Self::Promoted,
    ];

    /// The roles an account may have (`promoted` is only ever a ticket's).
    pub const ACCOUNT: [Self; 4] = [Self::User, Self::Supernode, Self::Mega, Self::Admin];

    /// The lowercase name used in configs and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Supernode => "supernode",
            Self::Mega => "mega",
            Self::Admin => "admin",
            Self::Promoted => "promoted",
        }
    }

    /// Whether a ticket of this role may serve as a supernode of the given kind. A user's
    /// ticket never does: a promoted client serves with a `promoted` ticket issued for its own
    /// key on its home's nomination, so that no account can run a rogue supernode.
    pub const fn may_serve(self, mega: bool) -> bool {
        match (self, mega) {
            (Self::Mega, _) | (Self::Supernode | Self::Promoted, false) => true,
            (Self::User | Self::Admin, _) | (Self::Supernode | Self::Promoted, true) => false,
        }
    }

    /// Whether a ticket of this role may nominate a client for promotion: operator
    /// supernodes and megas only, so that a promoted node cannot promote others in a chain.
    pub const fn may_nominate(self) -> bool {
        matches!(self, Self::Supernode | Self::Mega)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected user, supernode, mega, admin or promoted)")]
pub struct ParseRoleError(pub String);

impl FromStr for Role {
    type Err = ParseRoleError;

    fn from_str(text: &str) -> Result<Self, ParseRoleError> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| ParseRoleError(text.to_owned()))
    }
}

/// Wall-clock time in whole seconds since the Unix epoch, as carried in tickets and records.
///
/// `proto` never reads a clock: callers pass `now` in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// `self + secs`, saturating.
    pub const fn plus(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// Seconds from `earlier` to `self`, or 0 if `earlier` is later.
    pub const fn since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

/// Where a node can be reached, and who it is: the pair a dialer needs to authenticate what it
/// reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PeerAddr {
    /// The node's identity.
    pub node: NodeId,
    /// Its UDP address.
    pub addr: SocketAddr,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_documented_alphabet() {
        assert!(Username::new("alice").is_ok());
        assert!(Username::new("bob.smith-2_x").is_ok());
        assert!(Username::new("0day").is_ok());
        assert_eq!(Username::new(""), Err(UsernameError::Empty));
        assert_eq!(
            Username::new("Alice"),
            Err(UsernameError::BadCharacter('A'))
        );
        assert_eq!(Username::new("-x"), Err(UsernameError::BadStart));
        assert_eq!(
            Username::new("ali ce"),
            Err(UsernameError::BadCharacter(' '))
        );
        assert!(Username::new(&"a".repeat(32)).is_ok());
        assert_eq!(
            Username::new(&"a".repeat(33)),
            Err(UsernameError::TooLong(33))
        );
        assert_eq!(Username::new("é"), Err(UsernameError::BadCharacter('é')));
    }

    #[test]
    fn an_invalid_username_on_the_wire_is_refused() {
        let bytes = postcard::to_allocvec("Not Valid").unwrap();
        assert!(postcard::from_bytes::<Username>(&bytes).is_err());
    }

    #[test]
    fn keys_round_trip_through_hex() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
        let id = NodeId::from_bytes(key.to_bytes());
        let parsed: NodeId = id.to_string().parse().unwrap();
        assert_eq!(parsed, id);
        assert!("zz".parse::<NodeId>().is_err());
        assert!("g".repeat(64).parse::<AuthKey>().is_err());
    }

    #[test]
    fn roles_parse_from_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
        assert!(Role::Mega.may_serve(true));
        assert!(!Role::User.may_serve(true));
        assert!(!Role::User.may_serve(false));
        assert!(Role::Supernode.may_serve(false));
        assert!(!Role::Admin.may_serve(false));
    }
}
