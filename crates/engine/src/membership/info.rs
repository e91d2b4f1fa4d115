//! A member's identity (its signed statement about itself) and what it signs with.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use foca::Identity;
use serde::{Deserialize, Serialize};
use switchboard_proto::member::{MemberBody, MemberError, MemberProof};
use switchboard_proto::{NodeId, SecretKey, Ticket};

use super::MemberRole;

/// A member's identity in the overlay: its signed statement about itself, behind a shared
/// pointer. Every copy of one verified statement (foca's member list, the live set, the
/// verifier's, the simulator's thousand views) points at one [`Statement`]: the verifier hands
/// out the copy it verified first ([`super::verify::VerifiedCache`]). A copy each was 104 bytes
/// in foca's list and 112 more in the live set per pair of members, most of the simulator's
/// memory at a thousand supernodes. foca holds it with its node id's head beside (`SwimId`).
/// Encoded as the statement itself, so the wire format is that of a plain struct.
#[derive(Clone)]
pub struct MemberInfo(Arc<Shared>);

/// The one copy of a statement, with its encoding once it was first asked for.
struct Shared {
    statement: Statement,
    /// The statement's postcard encoding, made once: every membership packet names its sender
    /// and its destination by their statements (about 400 bytes each), and serializing both
    /// field by field and byte by byte for every packet sent was 4% of a simulated run's
    /// samples (1,000 supernodes, 100,000 clients). `None` if it cannot be encoded (never
    /// seen: the fields are plain data), and then it is serialized each time.
    encoded: OnceLock<Option<Box<[u8]>>>,
}

/// What a member says about itself, and the proof that it said so.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Statement {
    /// Its node key.
    pub node: NodeId,
    /// Its overlay (QUIC) address.
    pub addr: SocketAddr,
    /// Its role.
    pub role: MemberRole,
    /// How many clients it admits.
    pub capacity: u32,
    /// Which life of this node: a restart or a rejoin after being declared down takes a higher
    /// generation, which wins over the old identity.
    pub generation: u64,
    /// Its ticket and signature over the fields above (see [`super::verify`]).
    pub proof: MemberProof,
}

impl std::ops::Deref for MemberInfo {
    type Target = Statement;

    fn deref(&self) -> &Statement {
        &self.0.statement
    }
}

impl PartialEq for MemberInfo {
    /// The same statement: most comparisons are of two copies of one shared statement, told
    /// equal without reading it.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.statement == other.0.statement
    }
}

impl Eq for MemberInfo {}

impl std::hash::Hash for MemberInfo {
    /// The statement's, as equality is.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.statement.hash(state);
    }
}

impl std::fmt::Debug for MemberInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.statement.fmt(f)
    }
}

impl Serialize for MemberInfo {
    /// As the statement itself.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.statement.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for MemberInfo {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Statement::deserialize(deserializer).map(Self::from)
    }
}

impl crate::placement::NamesNode for MemberInfo {
    fn node_id(&self) -> &NodeId {
        &self.node
    }
}

impl From<Statement> for MemberInfo {
    fn from(statement: Statement) -> Self {
        Self(Arc::new(Shared {
            statement,
            encoded: OnceLock::new(),
        }))
    }
}

impl MemberInfo {
    /// A statement signed by `signer`, about itself.
    pub fn signed(
        signer: &Signer,
        addr: SocketAddr,
        role: MemberRole,
        capacity: u32,
        generation: u64,
    ) -> Result<Self, MemberError> {
        let body = MemberBody {
            node: signer.key.node_id(),
            addr,
            role,
            capacity,
            generation,
        };
        let proof = MemberProof::sign(&signer.key, signer.ticket.clone(), &body)?;
        Ok(Self::from(Statement {
            node: body.node,
            addr: body.addr,
            role: body.role,
            capacity: body.capacity,
            generation: body.generation,
            proof,
        }))
    }

    /// The same statement as `other`, a second pointer to it (a test of sharing).
    pub fn shares_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A copy of the statement, to change (the result is no longer signed by its member:
    /// tests build forgeries with it, the membership its announces' placeholders).
    pub fn to_statement(&self) -> Statement {
        self.0.statement.clone()
    }

    /// The statement's postcard encoding (what serializing it writes), made once for every
    /// copy of it; `None` if it cannot be encoded.
    pub(crate) fn encoded(&self) -> Option<&[u8]> {
        self.0
            .encoded
            .get_or_init(|| {
                postcard::to_stdvec(&self.0.statement)
                    .ok()
                    .map(Vec::into_boxed_slice)
            })
            .as_deref()
    }
}

impl Statement {
    /// The signed fields.
    pub fn body(&self) -> MemberBody {
        MemberBody {
            node: self.node,
            addr: self.addr,
            role: self.role,
            capacity: self.capacity,
            generation: self.generation,
        }
    }
}

/// What foca knows a member by: its statement, with the first 16 bytes of its node id beside
/// the pointer, which is foca's address of it.
///
/// foca keeps its members in a vector and finds one by comparing addresses entry by entry
/// (`foca::member::Members::apply_existing_if`, for every update it applies). Reading each
/// entry's node id through its pointer was a cache miss per entry: at 2,000 supernodes that
/// scan was a quarter of a simulated run's samples. With the address beside the pointer the
/// scan reads the list itself, 32 bytes an entry instead of 16.
///
/// Two node ids alike in their first 16 bytes are one address to foca: the later generation
/// replaces the other, as a restart's would. A node id is an Ed25519 public key, so making one
/// alike an honest member's takes about 2^128 / n key pairs; only a member's own two keys can
/// be made alike (2^64 pairs), which harms nobody else: the membership takes such a rename as
/// the old one leaving and the new one arriving.
#[derive(Clone, Eq)]
pub(crate) struct SwimId {
    head: [u64; 2],
    info: MemberInfo,
}

impl SwimId {
    /// The statement.
    pub(crate) fn info(&self) -> &MemberInfo {
        &self.info
    }

    /// The statement, kept.
    pub(crate) fn into_info(self) -> MemberInfo {
        self.info
    }
}

impl From<MemberInfo> for SwimId {
    fn from(info: MemberInfo) -> Self {
        Self {
            head: [
                super::node_word(&info.node, 0),
                super::node_word(&info.node, 1),
            ],
            info,
        }
    }
}

impl std::ops::Deref for SwimId {
    type Target = MemberInfo;

    fn deref(&self) -> &MemberInfo {
        &self.info
    }
}

impl PartialEq for SwimId {
    /// The same statement; two members' differ in their heads, told without the pointer.
    fn eq(&self, other: &Self) -> bool {
        self.head == other.head && self.info == other.info
    }
}

impl std::hash::Hash for SwimId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.info.hash(state);
    }
}

impl std::fmt::Debug for SwimId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.info.fmt(f)
    }
}

impl Serialize for SwimId {
    /// As the statement: the head is the node id's, not sent twice.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.info.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SwimId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        MemberInfo::deserialize(deserializer).map(Self::from)
    }
}

impl Identity for SwimId {
    type Addr = [u64; 2];

    /// No automatic renewal: a new generation needs the node key's signature, which foca does
    /// not hold. A member declared down rejoins through [`super::Membership`] (foca's `Defunct`).
    fn renew(&self) -> Option<Self> {
        None
    }

    fn addr(&self) -> [u64; 2] {
        self.head
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.generation > adversary.generation
    }
}

/// What a member signs its statements and load reports with: its node key and its ticket
/// (role `supernode` or `mega`).
#[derive(Debug, Clone)]
pub struct Signer {
    /// The node key.
    pub key: SecretKey,
    /// Its ticket.
    pub ticket: Ticket,
}
