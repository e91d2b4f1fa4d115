//! A member's identity (its signed statement about itself) and what it signs with.

use std::net::SocketAddr;
use std::sync::Arc;

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
/// memory at a thousand supernodes; and foca's scans of its list now read 16-byte entries.
/// Encoded as the statement itself, so the wire format is that of a plain struct.
#[derive(Clone, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MemberInfo(Arc<Statement>);

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
        &self.0
    }
}

impl PartialEq for MemberInfo {
    /// The same statement: most comparisons are of two copies of one shared statement, told
    /// equal without reading it.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}

impl std::hash::Hash for MemberInfo {
    /// The statement's, as equality is.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl std::fmt::Debug for MemberInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl crate::placement::NamesNode for MemberInfo {
    fn node_id(&self) -> &NodeId {
        &self.node
    }
}

impl From<Statement> for MemberInfo {
    fn from(statement: Statement) -> Self {
        Self(Arc::new(statement))
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
        (*self.0).clone()
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

impl Identity for MemberInfo {
    type Addr = NodeId;

    /// No automatic renewal: a new generation needs the node key's signature, which foca does
    /// not hold. A member declared down rejoins through [`super::Membership`] (foca's `Defunct`).
    fn renew(&self) -> Option<Self> {
        None
    }

    fn addr(&self) -> NodeId {
        self.node
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
