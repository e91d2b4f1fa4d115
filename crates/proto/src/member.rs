//! Member statements: what a supernode says of itself in the overlay's membership (node id,
//! overlay address, role, capacity, generation), signed by its node key and carrying its
//! ticket, so that every receiver checks it end to end. A supernode may relay another's
//! statement but never forge one: a made-up node id has no ticket, and another member's
//! address or generation cannot be changed without that member's key.
//!
//! Load reports (a member's client count, gossiped) are signed the same way.
//!
//! A statement's ticket is checked for its signature, role and node, not for expiry: statements
//! are relayed long after they were made (a down member's last identity lives in every view for
//! an hour), and a member whose ticket expired or was revoked cannot hold an overlay connection
//! (the TLS handshake and the revocation poll enforce that), so it is declared down.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::ids::{NodeId, Role, Signature};
use crate::keys::{self, SecretKey, SignatureError, TrustAnchor};
use crate::ticket::{Ticket, TicketBody, TicketError};

/// Signing domain of member statements; see [`crate::keys`].
const MEMBER_DOMAIN: &[u8] = b"switchboard/member/v1\0";

/// Signing domain of load reports.
const LOAD_DOMAIN: &[u8] = b"switchboard/load/v1\0";

/// What kind of supernode a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemberRole {
    /// An ordinary (operator or promoted) supernode.
    Supernode,
    /// An active mega-supernode.
    Mega,
    /// A mega-supernode on warm standby: a member, but it admits no clients.
    Standby,
}

/// The signed part of a member statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberBody {
    /// Its node key.
    pub node: NodeId,
    /// Its overlay (QUIC) address.
    pub addr: SocketAddr,
    /// Its role.
    pub role: MemberRole,
    /// How many clients it admits.
    pub capacity: u32,
    /// Which life of this node (a rejoin takes a higher one).
    pub generation: u64,
}

/// The proof that goes with a [`MemberBody`]: the member's ticket and its node key's signature
/// over the body and the ticket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberProof {
    ticket: Ticket,
    signature: Signature,
}

/// Why a member statement or a load report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    /// The ticket is not the auth-server's.
    #[error("member's ticket: {0}")]
    Ticket(#[from] TicketError),
    /// The ticket names another node than the statement.
    #[error("statement about {statement} carries a ticket for {ticket}")]
    WrongTicket {
        /// Whom the statement is about.
        statement: NodeId,
        /// Whom the ticket names.
        ticket: NodeId,
    },
    /// The ticket's role may not take the statement's role in the overlay.
    #[error("a ticket of role {ticket} may not be a {statement:?} member")]
    RoleNotAllowed {
        /// The ticket's role.
        ticket: Role,
        /// The claimed member role.
        statement: MemberRole,
    },
    /// Not signed by the member's node key.
    #[error("statement not signed by the member's node key ({0})")]
    BadSignature(SignatureError),
}

/// Whether a ticket of `ticket` role may be a member of `member` role.
fn role_allowed(ticket: Role, member: MemberRole) -> bool {
    match member {
        MemberRole::Supernode => matches!(ticket, Role::Supernode | Role::Mega | Role::Promoted),
        MemberRole::Mega | MemberRole::Standby => ticket == Role::Mega,
    }
}

/// The ticket names the statement's node and allows its role.
fn check_binding(named: &TicketBody, body: &MemberBody) -> Result<(), MemberError> {
    if named.node != body.node {
        return Err(MemberError::WrongTicket {
            statement: body.node,
            ticket: named.node,
        });
    }
    if !role_allowed(named.role, body.role) {
        return Err(MemberError::RoleNotAllowed {
            ticket: named.role,
            statement: body.role,
        });
    }
    Ok(())
}

impl MemberProof {
    /// Signs `body` with the member's node key; `ticket` must name that key and allow the role.
    pub fn sign(key: &SecretKey, ticket: Ticket, body: &MemberBody) -> Result<Self, MemberError> {
        let named = ticket.body_unverified();
        if key.node_id() != body.node {
            return Err(MemberError::WrongTicket {
                statement: body.node,
                ticket: named.node,
            });
        }
        check_binding(named, body)?;
        let signature = key
            .sign(MEMBER_DOMAIN, &(body, &ticket))
            .map_err(MemberError::BadSignature)?;
        Ok(Self { ticket, signature })
    }

    /// The ticket, unverified.
    pub fn ticket_unverified(&self) -> &Ticket {
        &self.ticket
    }

    /// Verifies that `body` is what its member said: the ticket is the auth-server's, names
    /// `body.node` and allows `body.role`, and the node key signed body and ticket.
    pub fn verify(&self, trusted: &TrustAnchor, body: &MemberBody) -> Result<(), MemberError> {
        check_binding(self.ticket.verify_signature(trusted)?, body)?;
        let key = body
            .node
            .verifying_key()
            .map_err(|e| MemberError::BadSignature(SignatureError::BadKey(e)))?;
        keys::verify(&key, MEMBER_DOMAIN, &(body, &self.ticket), &self.signature)
            .map_err(MemberError::BadSignature)
    }
}

/// A member's client count, as it gossips it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LoadBody {
    /// Whose load.
    pub node: NodeId,
    /// Grows with each report, so an older one never replaces a newer one.
    pub seq: u64,
    /// Clients in session.
    pub clients: u32,
}

/// A [`LoadBody`] signed by its member's node key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LoadReport {
    body: LoadBody,
    signature: Signature,
}

impl LoadReport {
    /// Signs `body` with the member's node key.
    pub fn sign(key: &SecretKey, body: LoadBody) -> Result<Self, MemberError> {
        if key.node_id() != body.node {
            return Err(MemberError::WrongTicket {
                statement: body.node,
                ticket: key.node_id(),
            });
        }
        let signature = key
            .sign(LOAD_DOMAIN, &body)
            .map_err(MemberError::BadSignature)?;
        Ok(Self { body, signature })
    }

    /// The content, unverified.
    pub fn body_unverified(&self) -> &LoadBody {
        &self.body
    }

    /// Verifies that the member named in the report signed it.
    pub fn verify(&self) -> Result<&LoadBody, MemberError> {
        let key = self
            .body
            .node
            .verifying_key()
            .map_err(|e| MemberError::BadSignature(SignatureError::BadKey(e)))?;
        keys::verify(&key, LOAD_DOMAIN, &self.body, &self.signature)
            .map_err(MemberError::BadSignature)?;
        Ok(&self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{UnixTime, Username};
    use crate::ticket::TicketBody;

    fn ticket(auth: &SecretKey, key: &SecretKey, role: Role) -> Ticket {
        Ticket::issue(
            auth,
            TicketBody {
                user: Username::new("sn").unwrap(),
                node: key.node_id(),
                role,
                issued_at: UnixTime(1_000),
                expires_at: UnixTime(2_000),
                serial: 1,
            },
        )
        .unwrap()
    }

    fn body(key: &SecretKey, role: MemberRole) -> MemberBody {
        MemberBody {
            node: key.node_id(),
            addr: "127.0.0.1:7000".parse().unwrap(),
            role,
            capacity: 100,
            generation: 1,
        }
    }

    #[test]
    fn a_signed_statement_verifies_and_any_change_to_it_does_not() {
        let auth = SecretKey::from_seed([1; 32]);
        let key = SecretKey::from_seed([2; 32]);
        let statement = body(&key, MemberRole::Supernode);
        let proof =
            MemberProof::sign(&key, ticket(&auth, &key, Role::Supernode), &statement).unwrap();
        proof.verify(&auth.trust_anchor(), &statement).unwrap();
        for changed in [
            MemberBody {
                addr: "10.0.0.9:1".parse().unwrap(),
                ..statement
            },
            MemberBody {
                generation: u64::MAX,
                ..statement
            },
            MemberBody {
                capacity: 1_000_000,
                ..statement
            },
        ] {
            assert!(matches!(
                proof.verify(&auth.trust_anchor(), &changed),
                Err(MemberError::BadSignature(_))
            ));
        }
        // Another node's statement with this proof: the ticket names someone else.
        let other = SecretKey::from_seed([3; 32]);
        assert!(matches!(
            proof.verify(&auth.trust_anchor(), &body(&other, MemberRole::Supernode)),
            Err(MemberError::WrongTicket { .. })
        ));
        // Another auth-server's ticket.
        let forger = SecretKey::from_seed([4; 32]);
        let forged =
            MemberProof::sign(&key, ticket(&forger, &key, Role::Supernode), &statement).unwrap();
        assert!(matches!(
            forged.verify(&auth.trust_anchor(), &statement),
            Err(MemberError::Ticket(_))
        ));
    }

    #[test]
    fn only_a_mega_ticket_makes_a_mega_or_standby_member_and_a_user_ticket_makes_none() {
        let auth = SecretKey::from_seed([1; 32]);
        let key = SecretKey::from_seed([2; 32]);
        assert!(matches!(
            MemberProof::sign(
                &key,
                ticket(&auth, &key, Role::Supernode),
                &body(&key, MemberRole::Mega)
            ),
            Err(MemberError::RoleNotAllowed { .. })
        ));
        assert!(matches!(
            MemberProof::sign(
                &key,
                ticket(&auth, &key, Role::User),
                &body(&key, MemberRole::Supernode)
            ),
            Err(MemberError::RoleNotAllowed { .. })
        ));
        let mega = body(&key, MemberRole::Standby);
        let proof = MemberProof::sign(&key, ticket(&auth, &key, Role::Mega), &mega).unwrap();
        proof.verify(&auth.trust_anchor(), &mega).unwrap();
    }

    #[test]
    fn a_load_report_verifies_only_as_its_member_signed_it() {
        let key = SecretKey::from_seed([2; 32]);
        let report = LoadReport::sign(
            &key,
            LoadBody {
                node: key.node_id(),
                seq: 3,
                clients: 10,
            },
        )
        .unwrap();
        assert_eq!(report.verify().unwrap().clients, 10);
        let mut forged = report;
        forged.body.seq = u64::MAX;
        assert!(forged.verify().is_err());
        let other = SecretKey::from_seed([3; 32]);
        assert!(LoadReport::sign(
            &other,
            LoadBody {
                node: key.node_id(),
                seq: 1,
                clients: 0
            }
        )
        .is_err());
    }
}
