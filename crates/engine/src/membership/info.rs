//! A member's identity (its signed statement about itself) and what it signs with.

use std::net::SocketAddr;
use std::sync::Arc;

use foca::Identity;
use serde::{Deserialize, Serialize};
use switchboard_proto::member::{MemberBody, MemberError, MemberProof};
use switchboard_proto::{NodeId, SecretKey, Ticket};

use super::MemberRole;

/// A member's identity in the overlay: who it is, where to reach it, what it offers, and the
/// proof that it said so (its ticket and its node key's signature; see [`super::verify`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberInfo {
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
    /// Its ticket and signature over the fields above. Shared: every copy of one verified
    /// statement (foca's, the live set's, the simulator's thousand views) points at one proof
    /// (see [`super::verify::VerifiedCache`]); it is three quarters of the statement's size.
    /// Encoded as the proof itself (serde's `rc`), so the wire format does not change.
    pub proof: Arc<MemberProof>,
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
        Ok(Self::from_parts(body, Arc::new(proof)))
    }

    fn from_parts(body: MemberBody, proof: Arc<MemberProof>) -> Self {
        Self {
            node: body.node,
            addr: body.addr,
            role: body.role,
            capacity: body.capacity,
            generation: body.generation,
            proof,
        }
    }

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
