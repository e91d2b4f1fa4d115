//! Nominations: a supernode's signed statement that one of its clients may serve as a
//! supernode (DESIGN.md sections 3 and 6). The client takes it to the auth-server, which checks
//! it and issues a `promoted` ticket for the client's own node key.
//!
//! A nomination names the nominee's node key and account, the nominator, the address the
//! nominee proved reachable at (by a dial-back from another socket) and the capacity it
//! declared. It is signed by the nominator's node key and carries the nominator's ticket, so
//! the auth-server believes it only as far as that supernode's key and ticket go; it is valid
//! for [`NOMINATION_VALIDITY_SECS`] so that a captured one cannot be replayed later.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::ids::{NodeId, Role, Signature, UnixTime, Username};
use crate::keys::{self, SecretKey, SignatureError, TrustAnchor};
use crate::ticket::{Ticket, TicketError};

/// Signing domain of nominations; see [`crate::keys`].
const NOMINATION_DOMAIN: &[u8] = b"switchboard/nomination/v1\0";

/// How long a nomination may be presented after it was made, in seconds: long enough for the
/// nominee to reach the auth-server over a slow path (a login's few round trips), short enough
/// that a nomination copied off the wire is useless soon after.
pub const NOMINATION_VALIDITY_SECS: u64 = 120;

/// Clock difference tolerated between the nominator and the verifier, in seconds (the same
/// allowance as for tickets).
const NOMINATION_SKEW_SECS: u64 = 60;

/// The signed part of a nomination.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NominationBody {
    /// The client to promote (its node key: the promoted ticket is issued for it).
    pub nominee: NodeId,
    /// The client's account (from its verified user ticket).
    pub user: Username,
    /// The supernode that nominates (the client's home).
    pub nominator: NodeId,
    /// Where the nominee answered the dial-back and will serve.
    pub addr: SocketAddr,
    /// The capacity the nominee declared.
    pub capacity: u32,
    /// When the nominator signed it.
    pub issued_at: UnixTime,
}

/// A [`NominationBody`] with the nominator's ticket and signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Nomination {
    body: NominationBody,
    nominator_ticket: Ticket,
    signature: Signature,
}

/// Why a nomination was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NominationError {
    /// The nominator's ticket is not the auth-server's, or is out of its time window.
    #[error("nominator's ticket: {0}")]
    Ticket(#[from] TicketError),
    /// The nominator's ticket names another node.
    #[error("nomination by {nominator} carries a ticket for {ticket}")]
    WrongTicket {
        /// The nominator named in the nomination.
        nominator: NodeId,
        /// The node the ticket names.
        ticket: NodeId,
    },
    /// The nominator's role may not nominate.
    #[error("a ticket of role {0} may not nominate (only supernode and mega)")]
    RoleMayNotNominate(Role),
    /// Not signed by the nominator's node key.
    #[error("nomination not signed by the nominator's node key ({0})")]
    BadSignature(SignatureError),
    /// Too old, or from the future.
    #[error("nomination issued at {issued_at} is not valid at {now} (valid {NOMINATION_VALIDITY_SECS} s)")]
    Stale {
        /// When it was signed.
        issued_at: UnixTime,
        /// The verifier's time.
        now: UnixTime,
    },
}

impl Nomination {
    /// Signs `body` with the nominator's node key; `ticket` must name that key and allow it to
    /// nominate.
    pub fn sign(
        key: &SecretKey,
        ticket: Ticket,
        body: NominationBody,
    ) -> Result<Self, NominationError> {
        let named = ticket.body_unverified();
        check_binding(named.node, named.role, &body)?;
        if key.node_id() != body.nominator {
            return Err(NominationError::WrongTicket {
                nominator: body.nominator,
                ticket: key.node_id(),
            });
        }
        let signature = key
            .sign(NOMINATION_DOMAIN, &(&body, &ticket))
            .map_err(NominationError::BadSignature)?;
        Ok(Self {
            body,
            nominator_ticket: ticket,
            signature,
        })
    }

    /// The content, unverified.
    pub fn body_unverified(&self) -> &NominationBody {
        &self.body
    }

    /// The nominator's ticket, unverified (its serial is what a revocation list names).
    pub fn nominator_ticket_unverified(&self) -> &Ticket {
        &self.nominator_ticket
    }

    /// Verifies, at `now`, that the nominator's ticket is the auth-server's, valid, names the
    /// nominator and allows it to nominate, that the nominator's key signed body and ticket,
    /// and that the nomination is fresh. Revocation is the verifier's to check.
    pub fn verify(
        &self,
        trusted: &TrustAnchor,
        now: UnixTime,
    ) -> Result<&NominationBody, NominationError> {
        let named = self.nominator_ticket.verify(trusted, now)?;
        check_binding(named.node, named.role, &self.body)?;
        let issued = self.body.issued_at.0;
        let fresh = issued <= now.0.saturating_add(NOMINATION_SKEW_SECS)
            && now.0 <= issued.saturating_add(NOMINATION_VALIDITY_SECS);
        if !fresh {
            return Err(NominationError::Stale {
                issued_at: self.body.issued_at,
                now,
            });
        }
        let key = self
            .body
            .nominator
            .verifying_key()
            .map_err(|e| NominationError::BadSignature(SignatureError::BadKey(e)))?;
        keys::verify(
            &key,
            NOMINATION_DOMAIN,
            &(&self.body, &self.nominator_ticket),
            &self.signature,
        )
        .map_err(NominationError::BadSignature)?;
        Ok(&self.body)
    }
}

fn check_binding(node: NodeId, role: Role, body: &NominationBody) -> Result<(), NominationError> {
    if node != body.nominator {
        return Err(NominationError::WrongTicket {
            nominator: body.nominator,
            ticket: node,
        });
    }
    if !role.may_nominate() {
        return Err(NominationError::RoleMayNotNominate(role));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::ticket::TicketBody;

    fn key(seed: u8) -> SecretKey {
        SecretKey::from_seed([seed; 32])
    }

    fn ticket(auth: &SecretKey, node: NodeId, role: Role) -> Ticket {
        Ticket::issue(
            auth,
            TicketBody {
                user: Username::new("sn1").unwrap(),
                node,
                role,
                issued_at: UnixTime(1_000),
                expires_at: UnixTime(10_000),
                serial: 7,
            },
        )
        .unwrap()
    }

    fn body(nominator: NodeId) -> NominationBody {
        NominationBody {
            nominee: key(3).node_id(),
            user: Username::new("alice").unwrap(),
            nominator,
            addr: "192.0.2.1:4433".parse().unwrap(),
            capacity: 20,
            issued_at: UnixTime(2_000),
        }
    }

    #[test]
    fn a_nomination_signed_by_a_supernode_verifies_while_fresh() {
        let (auth, home) = (key(1), key(2));
        let t = ticket(&auth, home.node_id(), Role::Supernode);
        let n = Nomination::sign(&home, t, body(home.node_id())).unwrap();
        let anchor = auth.trust_anchor();
        assert_eq!(n.verify(&anchor, UnixTime(2_000)).unwrap().capacity, 20);
        assert_eq!(
            n.verify(&anchor, UnixTime(2_120)).unwrap().user.as_str(),
            "alice"
        );
        assert!(matches!(
            n.verify(&anchor, UnixTime(2_121)),
            Err(NominationError::Stale { .. })
        ));
        assert!(matches!(
            n.verify(&anchor, UnixTime(1_939)),
            Err(NominationError::Stale { .. })
        ));
    }

    #[test]
    fn a_user_or_promoted_ticket_may_not_nominate() {
        let (auth, home) = (key(1), key(2));
        for role in [Role::User, Role::Promoted, Role::Admin] {
            let t = ticket(&auth, home.node_id(), role);
            assert_eq!(
                Nomination::sign(&home, t, body(home.node_id())).unwrap_err(),
                NominationError::RoleMayNotNominate(role)
            );
        }
    }

    #[test]
    fn a_changed_body_or_another_signer_is_refused() {
        let (auth, home, other) = (key(1), key(2), key(4));
        let t = ticket(&auth, home.node_id(), Role::Supernode);
        let mut n = Nomination::sign(&home, t.clone(), body(home.node_id())).unwrap();
        n.body.capacity = 20_000;
        assert!(matches!(
            n.verify(&auth.trust_anchor(), UnixTime(2_000)),
            Err(NominationError::BadSignature(_))
        ));
        // Someone else's key cannot sign with the home's ticket.
        assert!(Nomination::sign(&other, t, body(home.node_id())).is_err());
        // A ticket from another auth-server is refused.
        let foreign = ticket(&key(9), home.node_id(), Role::Supernode);
        let n = Nomination::sign(&home, foreign, body(home.node_id())).unwrap();
        assert!(matches!(
            n.verify(&auth.trust_anchor(), UnixTime(2_000)),
            Err(NominationError::Ticket(_))
        ));
    }
}
